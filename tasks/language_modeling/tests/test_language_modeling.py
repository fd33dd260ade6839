"""language_modeling: the lite split, the FineWeb shard loader (on tiny shards in the real format),
the full-size baseline and evaluator on those shards, the dev/test split of the hidden text, the
shared model.py, and the evaluator's handling of bad checkpoints (hand-written cases, and generated
ones through the harness's run_evaluator).

prepare.py, train.py and the evaluator run as the harness runs them: subprocesses, the evaluator in
a scratch folder holding the artefact folder, its last stdout line being one JSON object.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_mlgym.evaluation import run_evaluator
from pytest_mlgym.sdk.evaluator import Context
from pytest_mlgym.task import load_task
from pytest_mlgym.testing.artefacts import Evil, cheap, json_values, score, values
from pytest_mlgym.testing.scripts import run_prepare

TASK = Path(__file__).resolve().parents[1]
torch = GPT = GPTConfig = None  # imported by the fixture below: collecting the suite must not import torch


def context(private: Path | None = None) -> Context:
    return Context(artefact=Path("model"), size="lite", seed=0, task_dir=TASK, private_dir=private, public_dir=None)


@pytest.fixture(autouse=True)
def _torch_and_the_trusted_model():
    global torch, GPT, GPTConfig
    torch = pytest.importorskip("torch")
    gpt = context().import_shared("model.py")  # what the evaluator builds: the task folder's workspace copy
    GPT, GPTConfig = gpt.GPT, gpt.GPTConfig


def prepare(out: Path, size: str, data_dir: Path | None) -> subprocess.CompletedProcess:
    return run_prepare(TASK, out, size, data_dir)


def evaluate(scratch: Path, private: Path, size: str = "lite", artefact: str = "model", split: str | None = "test") -> dict:
    """The evaluator's result: one split's metrics (``split=None``: the whole line), or ``{"invalid": ...}``."""
    proc = subprocess.run([sys.executable, str(TASK / "private" / "evaluate.py"), artefact], cwd=scratch,
                          env={**os.environ, "MLGYM_PRIVATE_DATA": str(private), "MLGYM_SEED": "0",
                               "MLGYM_SIZE": size},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "invalid" in result:
        assert result["invalid"] and "\n" not in result["invalid"]
        return result
    assert set(result) == {"dev", "test"}, result
    return result if split is None else result[split]


def save(folder: Path, ckpt) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, folder / "model.pt")
    return folder


def tiny(**overrides) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**{**dict(vocab_size=256, block_size=32, n_layer=1, n_head=2, n_embd=16), **overrides}))


def write_shard(path: Path, tokens: np.ndarray) -> None:
    """modded-nanogpt's layout: 256 little-endian int32 (magic, version, token count), then uint16 tokens."""
    header = np.zeros(256, dtype="<i4")
    header[:3] = [20240520, 1, len(tokens)]
    path.write_bytes(header.tobytes() + tokens.astype("<u2").tobytes())


@pytest.fixture(scope="module")
def lite(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lite")
    proc = prepare(out, "lite", None)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def fineweb(tmp_path_factory) -> Path:
    """A tiny $MLGYM_DATA_DIR with two train shards and one val shard."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "language_modeling"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in [("fineweb_train_000001.bin", 6000), ("fineweb_train_000002.bin", 3000), ("fineweb_val_000000.bin", 2000)]:
        write_shard(folder / name, rng.integers(0, 50257, n))
    return root


def test_lite_split_is_deterministic_and_disjoint(lite, tmp_path):
    again = tmp_path / "again"
    assert prepare(again, "lite", None).returncode == 0
    for rel in ("public/train.txt", "public/val.txt", "private/test.txt"):
        assert (lite / rel).read_bytes() == (again / rel).read_bytes(), rel
    assert sorted(p.name for p in (lite / "public").iterdir()) == ["train.txt", "val.txt"]
    train, val, test = ((lite / r).read_bytes() for r in ("public/train.txt", "public/val.txt", "private/test.txt"))
    assert len(val) == len(test) == 131072 and len(train) > 4_700_000
    assert test.isascii() and b"HAMLET" in train + val + test
    chunks = [test[i:i + 16384] for i in range(0, len(test), 16384)]
    assert all(c not in train and c not in val for c in chunks)  # no test chunk leaks into public data


def test_full_without_data_exits_3_with_one_line(tmp_path):
    for data_dir in (None, tmp_path / "empty"):
        proc = prepare(tmp_path / "out", "full", data_dir)
        assert proc.returncode == 3
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "language_modeling" in lines[0] and "fineweb_val_" in lines[0]


def test_full_loader_on_tiny_shards(fineweb, tmp_path):
    out = tmp_path / "out"
    proc = prepare(out, "full", fineweb)
    assert proc.returncode == 0, proc.stderr
    src = fineweb / "language_modeling"
    assert sorted(p.name for p in (out / "public").iterdir()) == ["fineweb_train_000001.bin", "fineweb_train_000002.bin"]
    assert sorted(p.name for p in (out / "private").iterdir()) == ["fineweb_val_000000.bin"]
    for p in [*(out / "public").iterdir(), *(out / "private").iterdir()]:
        assert p.read_bytes() == (src / p.name).read_bytes()


def test_full_loader_refuses_a_bad_shard(fineweb, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(fineweb, bad)
    shard = bad / "language_modeling" / "fineweb_val_000000.bin"
    shard.write_bytes(shard.read_bytes()[:-10])  # truncated: the header's count no longer matches
    proc = prepare(tmp_path / "out", "full", bad)
    assert proc.returncode not in (0, 3) and "fineweb_val_000000.bin" in proc.stderr


def test_full_baseline_and_evaluator_on_tiny_shards(fineweb, tmp_path):
    """train.py trains on the shards (a tiny FULL setting), the evaluator scores in nats per token."""
    out = tmp_path / "out"
    assert prepare(out, "full", fineweb).returncode == 0
    ws = tmp_path / "ws"
    shutil.copytree(TASK / "workspace", ws)
    shutil.copytree(out / "public", ws / "data")
    small = "dict(N_LAYER=1, N_HEAD=2, N_EMBD=16, BLOCK_SIZE=32, BATCH_SIZE=2, MAX_STEPS=3, WARMUP_STEPS=1)"
    proc = subprocess.run([sys.executable, "-c", f"import train; train.FULL = {small}; train.main()"], cwd=ws,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "nats/token" in proc.stdout
    ckpt = torch.load(ws / "model" / "model.pt", weights_only=True)
    assert ckpt["config"]["vocab_size"] == 50257
    both = evaluate(ws, out / "private", size="full", split=None)
    # 3 steps from a small init: still close to uniform over the GPT-2 vocabulary
    assert both["dev"]["tokens"] + both["test"]["tokens"] == 1999 and both["test"]["tokens"] > 0, both
    result = both["test"]
    assert abs(result["test_loss"] - math.log(50257)) < 0.1, result
    assert result["test_loss"] == result["nats_per_token"]
    # a byte-level (lite) checkpoint does not fit the full size
    save(tmp_path / "lite" / "model", tiny().checkpoint())
    assert "vocab_size" in evaluate(tmp_path / "lite", out / "private", size="full")["invalid"]


def test_full_size_windows_are_at_most_1024_tokens(fineweb, tmp_path):
    """MLGym scores windows of 1,024 tokens: a 2,048-token context is scored like the same weights
    cut to 1,024 positions (learned positions, causal attention: the first 1,024 are all it uses)."""
    out = tmp_path / "out"
    assert prepare(out, "full", fineweb).returncode == 0
    long = tiny(vocab_size=50257, block_size=2048)
    save(tmp_path / "long" / "model", long.checkpoint())
    ckpt = long.checkpoint()
    ckpt["config"]["block_size"] = 1024
    ckpt["state_dict"]["pos_emb.weight"] = ckpt["state_dict"]["pos_emb.weight"][:1024].clone()
    save(tmp_path / "short" / "model", ckpt)
    scores = [evaluate(tmp_path / name, out / "private", size="full", split=None) for name in ("long", "short")]
    assert [{k: (v["test_loss"], v["tokens"]) for k, v in r.items()} for r in scores] == \
        [{k: (v["test_loss"], v["tokens"]) for k, v in scores[1].items()}] * 2, scores


def test_sample_model_is_valid_and_scored_deterministically(lite, tmp_path):
    shutil.copytree(TASK / "workspace" / "sample_model", tmp_path / "model")
    first, second = (evaluate(tmp_path, lite / "private", split=None) for _ in range(2))
    assert first == second and 7.5 < first["test"]["test_loss"] < 8.5
    assert first["dev"]["bytes"] + first["test"]["bytes"] == 131071


def test_the_hidden_text_is_split_by_chunk_into_dev_and_test(lite, tmp_path):
    """Chunks of 1,024 predicted bytes, about 20% dev by a keyed hash of the chunk id; one pass scores
    both: the per-split losses average back to the loss over the whole text."""
    shutil.copytree(TASK / "workspace" / "sample_model", tmp_path / "model")
    both = evaluate(tmp_path, lite / "private", split=None)
    n = 131071
    dev = context(lite / "private").row_splits(range(-(-n // 1024)))["dev"]
    chunk = np.arange(n) // 1024
    assert both["dev"]["bytes"] == int(dev[chunk].sum()) and 0.1 * n < both["dev"]["bytes"] < 0.3 * n
    # the same windows as one pass over the whole text: the byte-weighted mean of the two splits
    model = GPT(GPTConfig(**torch.load(tmp_path / "model" / "model.pt", weights_only=True)["config"]))
    model.load_state_dict(torch.load(tmp_path / "model" / "model.pt", weights_only=True)["state_dict"])
    text = torch.from_numpy(np.frombuffer((lite / "private" / "test.txt").read_bytes(), dtype=np.uint8).astype(np.int64))
    T, total = model.config.block_size, 0.0
    with torch.no_grad():  # consecutive non-overlapping windows of block_size, one forward pass each
        for i in range(0, n, T):
            x, y = text[i:min(i + T, n)], text[i + 1:min(i + T, n) + 1]
            logits, _ = model.eval()(x[None])
            total += float(torch.nn.functional.cross_entropy(logits[0], y, reduction="sum"))
    whole = total / n / math.log(2)
    mean = (both["dev"]["test_loss"] * both["dev"]["bytes"] + both["test"]["test_loss"] * both["test"]["bytes"]) / n
    assert abs(mean - whole) < 2e-6, (mean, whole)


def test_the_evaluator_builds_the_task_folders_model_py_never_the_agents():
    """model.py lives once, in workspace/ (task.yaml: shared); private/ holds no copy of it."""
    assert load_task(TASK).spec.shared == ["model.py"] and not (TASK / "private" / "model.py").exists()


def test_an_agents_model_py_beside_the_artefact_is_not_imported(lite, tmp_path):
    shutil.copytree(TASK / "workspace" / "sample_model", tmp_path / "model")
    honest = evaluate(tmp_path, lite / "private", split=None)
    evil = "raise SystemExit('the agent model.py ran')\n"
    (tmp_path / "model.py").write_text(evil)
    (tmp_path / "model" / "model.py").write_text(evil)
    assert evaluate(tmp_path, lite / "private", split=None) == honest


def test_bfloat16_weights_and_extra_files_are_accepted(lite, tmp_path):
    model = tiny()
    ckpt = model.checkpoint()
    ckpt["state_dict"] = {k: v.to(torch.bfloat16) for k, v in ckpt["state_dict"].items()}
    (save(tmp_path / "model", ckpt) / "notes.txt").write_text("ignored")
    assert "test_loss" in evaluate(tmp_path, lite / "private")


class Boom:  # pickled by reference: weights_only loading must refuse it without running anything
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def _config(**kw):
    return {**tiny().checkpoint()["config"], **kw}


def _sd(**kw):
    sd = dict(tiny().state_dict())
    sd.update(kw)
    return sd


BAD = {
    "not a folder": (lambda p: p.write_bytes(b"junk"), "must be a folder"),
    "no model.pt": (lambda p: p.mkdir(), "model.pt not found"),
    "junk bytes": (lambda p: (p.mkdir(), (p / "model.pt").write_bytes(b"\x00\xff" * 100)), "not a torch checkpoint"),
    "code in the pickle": (lambda p: (p.mkdir(), (p / "model.pt").write_bytes(pickle.dumps(Boom()))), "not a torch checkpoint"),
    "custom class": (lambda p: save(p, {"config": _config(), "state_dict": _sd(), "x": Boom()}), "not a torch checkpoint"),
    "a bare state_dict": (lambda p: save(p, _sd()), '{"config": dict, "state_dict": dict}'),
    "unknown config key": (lambda p: save(p, {"config": _config(bias=True), "state_dict": _sd()}), "unknown key"),
    "missing config key": (lambda p: save(p, {"config": {"n_layer": 1}, "state_dict": _sd()}), "config lacks"),
    "block_size too large": (lambda p: save(p, {"config": _config(block_size=4096), "state_dict": _sd()}), "block_size=4096"),
    "float n_layer": (lambda p: save(p, {"config": _config(n_layer=1.0), "state_dict": _sd()}), "n_layer=1.0"),
    "wrong vocabulary": (lambda p: save(p, {"config": _config(vocab_size=50257), "state_dict": _sd()}), "vocab_size"),
    "heads do not divide": (lambda p: save(p, {"config": _config(n_head=3), "state_dict": _sd()}), "multiple of n_head"),
    "too many parameters": (lambda p: save(p, {"config": _config(n_layer=12, n_embd=512, n_head=8), "state_dict": _sd()}), "parameters, over"),
    "extra tensor": (lambda p: save(p, {"config": _config(), "state_dict": _sd(**{"lm_head.weight": torch.zeros(256, 16)})}), "Unexpected key"),
    "missing tensor": (lambda p: save(p, {"config": _config(), "state_dict": {k: v for k, v in _sd().items() if k != "ln_f.weight"}}), "Missing key"),
    "shape mismatch": (lambda p: save(p, {"config": _config(n_embd=32), "state_dict": _sd()}), "size mismatch"),
    "NaN weight": (lambda p: save(p, {"config": _config(), "state_dict": _sd(**{"ln_f.bias": torch.full((16,), float("nan"))})}), "NaN"),
    "integer tensor": (lambda p: save(p, {"config": _config(), "state_dict": _sd(**{"ln_f.bias": torch.zeros(16, dtype=torch.int64)})}), "floating-point"),
    "symlinked model.pt": (lambda p: (p.mkdir(), (p / "model.pt").symlink_to(TASK / "workspace" / "sample_model" / "model.pt")), "symbolic link"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_checkpoints_are_invalid_with_a_reason(lite, tmp_path, case):
    make, expected = BAD[case]
    make(tmp_path / "model")
    result = evaluate(tmp_path, lite / "private")
    assert expected in result.get("invalid", ""), result
    assert not (tmp_path / "pwned").exists()


# -- generated bad checkpoints, through the harness's run_evaluator (from tests/security/test_bad_input.py)
LM_SAMPLE = TASK / "workspace" / "sample_model" / "model.pt"


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    task = load_task(TASK)
    return task, task.prepare("lite", Path(os.environ.get("MLGYM_CACHE_DIR") or tmp_path_factory.mktemp("cache")))


LM_CHANGES = {
    "bytes": st.binary(max_size=2000),
    "truncate": st.floats(0, 0.999),
    "flip": st.tuples(st.floats(0, 0.999), st.binary(min_size=1, max_size=64)),
    "pickle": values,  # a plain pickle, not a torch zip
    "torch_value": json_values,  # torch.save of any plain structure
    "config": st.tuples(st.sampled_from(["vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout",
                                         "bias", "extra"]),
                        st.sampled_from([0, -1, 10**9, 2**63, 1.5, True, None, "8", math.nan, math.inf]) | json_values),
    "drop_config": st.sampled_from(["vocab_size", "block_size", "n_layer", "n_head", "n_embd"]),
    "tensor": st.tuples(st.integers(0, 100), st.sampled_from(["shape", "int", "nan", "inf", "scalar", "list", "str",
                                                              "sparse", "complex", "none", "half"])),
    "drop_tensor": st.integers(0, 100),
    "extra_tensor": st.text(max_size=10),
    "shape": st.sampled_from(["not a dict", "no_state_dict", "no_config", "list"]),
}


def write_lm(folder: Path, change) -> None:
    folder.mkdir()
    path = folder / "model.pt"
    kind, args = change
    args = args if isinstance(args, tuple) else (args,)
    sample = LM_SAMPLE.read_bytes()
    if kind == "bytes":
        return path.write_bytes(args[0])
    if kind == "truncate":
        return path.write_bytes(sample[:int(len(sample) * args[0])])
    if kind == "flip":
        at = int(len(sample) * args[0])
        return path.write_bytes(sample[:at] + args[1] + sample[at + len(args[1]):])
    if kind == "pickle":
        return path.write_bytes(pickle.dumps(args[0]))
    if kind == "torch_value":
        return torch.save(args[0], path)
    ckpt = torch.load(LM_SAMPLE, weights_only=True)
    cfg, sd = dict(ckpt["config"]), dict(ckpt["state_dict"])
    names = sorted(sd)
    if kind == "config":
        cfg[args[0]] = args[1]
    elif kind == "drop_config":
        cfg.pop(args[0])
    elif kind == "tensor":
        name = names[args[0] % len(names)]
        t = sd[name]
        sd[name] = {"shape": lambda: torch.zeros(*t.shape, 2), "int": lambda: t.to(torch.int64),
                    "nan": lambda: torch.full_like(t, math.nan), "inf": lambda: torch.full_like(t, math.inf),
                    "scalar": lambda: torch.tensor(1.0), "list": lambda: t.tolist(), "str": lambda: "weights",
                    "sparse": lambda: t.reshape(t.shape[0], -1).to_sparse(), "complex": lambda: t.to(torch.complex64),
                    "none": lambda: None, "half": lambda: t.half()}[args[1]]()
    elif kind == "drop_tensor":
        sd.pop(names[args[0] % len(names)])
    elif kind == "extra_tensor":
        sd[args[0]] = torch.zeros(3)
    elif kind == "shape":
        torch.save({"not a dict": [cfg, sd], "no_state_dict": {"config": cfg}, "no_config": {"state_dict": sd},
                    "list": [cfg, sd]}[args[0]], path)
        return
    torch.save({"config": cfg, "state_dict": sd}, path)


@pytest.mark.parametrize("kind", sorted(LM_CHANGES))
@cheap(1)  # a torch evaluator starts in 1-3 s: one example of each kind
@given(data=st.data())
def test_language_modeling_checkpoints(language_model, kind, data):
    change = (kind, data.draw(LM_CHANGES[kind], label=kind))
    score(*language_model, lambda path, _: write_lm(path, change))


@cheap(2)
@given(wrapped=st.booleans())
def test_language_modeling_pickles_never_run(language_model, wrapped):
    canaries = []

    def write(path, scratch):
        canary = scratch / "canary"
        canaries.append(canary)
        path.mkdir()
        if wrapped:  # inside a well-formed torch zip checkpoint
            ckpt = torch.load(LM_SAMPLE, weights_only=True)
            ckpt["config"]["evil"] = Evil(canary)
            torch.save(ckpt, path / "model.pt")
        else:  # a bare pickle
            (path / "model.pt").write_bytes(pickle.dumps({"config": Evil(canary), "state_dict": {}}))

    task, prepared = language_model
    scratch = Path(tempfile.mkdtemp(prefix="mlgym-bad-pickle-"))
    try:
        write(scratch / "model", scratch)
        ev = run_evaluator(task, "lite", scratch / "model", prepared, scratch)
        assert not ev.valid and ev.reason and "\n" not in ev.reason, ev
        assert not canaries[0].exists(), "the evaluator unpickled an arbitrary object"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
