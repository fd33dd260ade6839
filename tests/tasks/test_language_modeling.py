"""language_modeling: the lite split, the FineWeb shard loader (on tiny shards in the real format),
the full-size baseline and evaluator on those shards, and the evaluator's handling of bad checkpoints.

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
from pathlib import Path

import numpy as np
import pytest

TASK = Path(__file__).resolve().parents[2] / "tasks" / "language_modeling"
torch = GPT = GPTConfig = None  # imported by the fixture below: collecting the suite must not import torch


@pytest.fixture(autouse=True)
def _torch_and_the_trusted_model():
    global torch, GPT, GPTConfig
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(TASK / "private"))
    try:
        from model import GPT, GPTConfig  # the evaluator's trusted copy
    finally:
        sys.path.remove(str(TASK / "private"))


def prepare(out: Path, size: str, data_dir: Path | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLGYM_DATA_DIR"}
    if data_dir is not None:
        env["MLGYM_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "prepare.py", "--size", size, "--out", str(out)], cwd=TASK,
                          env=env, capture_output=True, text=True, timeout=300)


def evaluate(scratch: Path, private: Path, size: str = "lite", artefact: str = "model") -> dict:
    proc = subprocess.run([sys.executable, str(TASK / "private" / "evaluate.py"), artefact], cwd=scratch,
                          env={**os.environ, "MLGYM_PRIVATE_DATA": str(private), "MLGYM_SEED": "0",
                               "MLGYM_SIZE": size},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "invalid" in result:
        assert result["invalid"] and "\n" not in result["invalid"]
    return result


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
    result = evaluate(ws, out / "private", size="full")
    # 3 steps from a small init: still close to uniform over the GPT-2 vocabulary
    assert result["tokens"] == 1999 and abs(result["test_loss"] - math.log(50257)) < 0.1, result
    assert result["test_loss"] == result["nats_per_token"]
    # a byte-level (lite) checkpoint does not fit the full size
    save(tmp_path / "lite" / "model", tiny().checkpoint())
    assert "vocab_size" in evaluate(tmp_path / "lite", out / "private", size="full")["invalid"]


def test_sample_model_is_valid_and_scored_deterministically(lite, tmp_path):
    shutil.copytree(TASK / "workspace" / "sample_model", tmp_path / "model")
    first, second = evaluate(tmp_path, lite / "private"), evaluate(tmp_path, lite / "private")
    assert first == second and 7.5 < first["test_loss"] < 8.5 and first["bytes"] == 131071


def test_evaluator_uses_an_identical_copy_of_the_architecture():
    assert (TASK / "private" / "model.py").read_bytes() == (TASK / "workspace" / "model.py").read_bytes()


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
    "symlinked model.pt": (lambda p: (p.mkdir(), (p / "model.pt").symlink_to(TASK / "workspace" / "sample_model" / "model.pt")), "model.pt not found"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_checkpoints_are_invalid_with_a_reason(lite, tmp_path, case):
    make, expected = BAD[case]
    make(tmp_path / "model")
    result = evaluate(tmp_path, lite / "private")
    assert expected in result.get("invalid", ""), result
    assert not (tmp_path / "pwned").exists()
