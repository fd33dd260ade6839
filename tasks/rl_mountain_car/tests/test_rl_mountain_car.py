"""rl_mountain_car: the budgets task.yaml declares, train.py -> the real evaluator end to end, and
generated broken checkpoint folders the evaluator refuses with a one-line reason (before any JAX
work), never unpickling. The checkpoint reader's cases, common to the gymnax tasks, are in
tests/test_sdk_gymnax.py."""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_mlgym.evaluation import Evaluation, run_evaluator
from pytest_mlgym.task import load_task
from pytest_mlgym.testing.artefacts import Evil, cheap, json_values, score

TASK = load_task(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return TASK.prepare("lite", tmp_path_factory.mktemp("cache"))


def evaluate(artefact: Path, prepared) -> Evaluation:
    """The harness's own evaluator run (isolated), in the artefact's folder as its scratch."""
    ev = run_evaluator(TASK, "lite", artefact, prepared, artefact.parent)
    if not ev.valid:
        assert ev.reason and "\n" not in ev.reason and not ev.reason.startswith("evaluator failed"), ev
    return ev


def test_the_budgets_match_train_py():
    lite_steps = int(re.search(r"^TOTAL_ENV_STEPS = ([\d_]+)", (TASK.workspace_dir / "train.py").read_text(),
                               re.MULTILINE).group(1))
    for size, scale in (("lite", 1), ("full", 10)):
        budget = TASK.size(size).public["budget.json"]
        assert budget["size"] == size and budget["scale"] == scale and budget["seeds"] == 3
        assert budget["env_steps_per_seed"] == scale * lite_steps == {"lite": 2_000_000, "full": 20_000_000}[size]


def test_train_writes_checkpoints_the_evaluator_scores(tmp_path, prepared):
    """train.py (and the gymnax_ppo.py it includes) with a tiny budget, one PPO update -> a valid
    checkpoint folder -> a finite score on both splits."""
    ws = TASK.copy_workspace(tmp_path / "ws")
    (ws / "data").mkdir()
    (ws / "data" / "budget.json").write_text(json.dumps({"size": "lite", "scale": 0.001, "wall_clock_s": 600}))
    proc = subprocess.run([sys.executable, "train.py"], cwd=ws, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (ws / "checkpoints").iterdir()) == ["config.json", "seed0.npz", "seed1.npz",
                                                                     "seed2.npz"]
    with np.load(ws / "checkpoints" / "seed0.npz") as z:
        assert z["log_std"].shape == (1,)
    ev = evaluate(ws / "checkpoints", prepared)
    assert ev.valid and np.isfinite(ev.score) and np.isfinite(ev.dev_score), ev
    assert len(ev.metrics["seed_means"]) == len(ev.dev_metrics["seed_means"]) == 3


def test_reference_checkpoints_are_small_and_in_the_format():
    ref = TASK.path / "reference" / "checkpoints"
    assert sum(p.stat().st_size for p in ref.iterdir()) < 5 << 20
    assert sorted(p.name for p in ref.iterdir()) == ["config.json", "seed0.npz", "seed1.npz", "seed2.npz"]


# ---- generated broken folders, through the real evaluator -----------------------------------------
MC_HIDDEN = [8]
MC_FILES = ["config.json", "seed0.npz", "seed1.npz", "seed2.npz"]
ARRAYS = ["w0", "b0", "w1", "b1", "obs_mean", "obs_std", "log_std"]


def _mc_arrays(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    sizes = [2, *MC_HIDDEN, 1]
    arrays = {"obs_mean": np.zeros(2, np.float32), "obs_std": np.ones(2, np.float32),
              "log_std": np.full(1, -1.0, np.float32)}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        arrays[f"w{i}"] = rng.normal(0, 0.1, (a, b)).astype(np.float32)
        arrays[f"b{i}"] = np.zeros(b, np.float32)
    return arrays


def _npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


BAD_ARRAYS = {
    "shape": lambda a: np.zeros(a.shape + (2,), a.dtype), "flat": lambda a: np.zeros(a.size + 1, a.dtype),
    "scalar": lambda a: np.float32(1.0), "int": lambda a: a.astype(np.int64), "bool": lambda a: a > 0,
    "complex": lambda a: a.astype(np.complex64), "object": lambda a: np.array([1, "x", None], dtype=object),
    "string": lambda a: np.array(["a"] * max(a.size, 1)), "nan": lambda a: np.full(a.shape, np.nan, np.float32),
    "inf": lambda a: np.full(a.shape, -np.inf, np.float64), "bytes": lambda a: np.frombuffer(b"abcd", "S1"),
    "structured": lambda a: np.zeros(a.shape, dtype=[("x", "f4")]), "empty": lambda a: np.zeros((0,), np.float32),
    "huge_dims": lambda a: np.zeros((1,) * 20, np.float32),
}
BAD_CONFIGS = [{"env": "CartPole-v1"}, {"hidden": [0]}, {"hidden": [257]}, {"hidden": [256, 256, 256]},
               {"hidden": []}, {"hidden": [8.0]}, {"hidden": [True]}, {"hidden": "8"}, {"hidden": 8},
               {"activation": "sigmoid"}, {"activation": None}, {"extra": 1}, {"hidden": [8, 8]}]
MC_BREAKS = {  # each breaks the folder for good: no rollout (JAX) ever starts
    "array": st.tuples(st.sampled_from(MC_FILES[1:]), st.sampled_from(ARRAYS), st.sampled_from(sorted(BAD_ARRAYS))),
    "extra_array": st.tuples(st.sampled_from(MC_FILES[1:]), st.from_regex(r"[a-z]\w{0,8}", fullmatch=True)
                             .filter(lambda n: n not in _mc_arrays(0))),
    "obs_std": st.tuples(st.sampled_from(MC_FILES[1:]), st.sampled_from([0.0, -1.0, 1e-9])),
    "log_std": st.tuples(st.sampled_from(MC_FILES[1:]), st.sampled_from([-20.5, 5.5, 1e9])),
    "drop_array": st.tuples(st.sampled_from(MC_FILES[1:]), st.sampled_from(["w0", "b1", "obs_std", "log_std"])),
    "truncate": st.tuples(st.sampled_from(MC_FILES), st.floats(0, 0.999)),
    "bytes": st.tuples(st.sampled_from(MC_FILES), st.binary(max_size=300)),
    "config_field": st.tuples(st.sampled_from(BAD_CONFIGS)),
    "config": st.tuples(json_values.filter(lambda v: not isinstance(v, dict) or "env" not in v)),
    "extra": st.tuples(st.sampled_from(["seed3.npz", "notes.txt", ".hidden", "config.json.bak"])
                       | st.from_regex(r"[a-z0-9_.]{1,12}", fullmatch=True).filter(
                           lambda n: n not in MC_FILES + [".", ".."]), st.binary(max_size=64)),
    "remove": st.tuples(st.sampled_from(MC_FILES)),
}
mc_breaks = st.sampled_from([*MC_BREAKS, "array"]).flatmap(  # the ends, drawn most, are the npz arrays
    lambda kind: MC_BREAKS[kind].map(lambda args: (kind, *args)))
mc_neutral = st.tuples(st.just("dtype"), st.sampled_from(MC_FILES[1:]), st.sampled_from(["float16", "float64"]))


def write_mc(folder: Path, changes) -> None:
    folder.mkdir()
    files = {f"seed{k}.npz": _mc_arrays(k) for k in range(3)}
    config = {"env": "MountainCarContinuous-v0", "hidden": MC_HIDDEN, "activation": "tanh"}
    raw: dict[str, bytes] = {}
    for change in changes:
        kind, *args = change
        if kind == "config":
            raw["config.json"] = json.dumps(args[0]).encode()
        elif kind == "config_field":
            config = {**config, **args[0]}
        elif kind in ("array", "drop_array", "extra_array", "obs_std", "log_std", "dtype") and args[0] in files:
            arrays = files[args[0]]
            if kind == "array":
                arrays[args[1]] = BAD_ARRAYS[args[2]](arrays[args[1]])
            elif kind == "drop_array":
                arrays.pop(args[1], None)
            elif kind == "extra_array":
                arrays[args[1]] = np.zeros(2, np.float32)
            elif kind == "obs_std":
                arrays["obs_std"] = np.array([1.0, args[1]], np.float32)
            elif kind == "log_std":
                arrays["log_std"] = np.array([args[1]], np.float32)
            else:
                files[args[0]] = {k: v.astype(args[1]) if getattr(v, "dtype", None) == np.float32 else v
                                  for k, v in arrays.items()}
    contents = {"config.json": json.dumps(config).encode(), **{n: _npz(a) for n, a in files.items()}, **raw}
    for change in changes:
        kind, *args = change
        if kind == "remove":
            contents.pop(args[0], None)
        elif kind == "extra" or (kind == "bytes" and args[0] in contents):
            contents[args[0]] = args[1]
        elif kind == "truncate" and args[0] in contents:
            contents[args[0]] = contents[args[0]][:int(len(contents[args[0]]) * args[1])]
    for name, data in contents.items():
        (folder / name).write_bytes(data)


def spec():
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("evaluate_rl_mountain_car", TASK.evaluator)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.SPEC


@pytest.mark.parametrize("neutral", [[], [("dtype", "seed1.npz", "float16"), ("dtype", "seed2.npz", "float64")]])
def test_the_unbroken_generated_folder_is_valid(tmp_path, neutral):  # so that every break below means something
    write_mc(tmp_path / "checkpoints", neutral)
    config, params = spec().read(tmp_path / "checkpoints")
    assert config.hidden == MC_HIDDEN and params["log_std"].shape == (3, 1)


@cheap(30)
@given(changes=st.lists(mc_breaks, min_size=1, max_size=3).flatmap(
    lambda b: st.lists(mc_neutral, max_size=2).map(lambda n: n + b)))
def test_broken_checkpoint_folders_are_invalid(prepared, changes):
    ev = score(TASK, prepared, lambda path, _: write_mc(path, changes))  # every change breaks it: no JAX rollout
    assert not ev.valid, (changes, ev)


@cheap(3)
@given(where=st.tuples(st.sampled_from(MC_FILES[1:]), st.sampled_from(["w0", "obs_std", "evil"])))
def test_a_pickled_object_array_never_runs(prepared, where):
    scratch = Path(tempfile.mkdtemp(prefix="mlgym-bad-pickle-"))
    canary = scratch / "canary"  # in the one folder the evaluator may write to
    try:
        write_mc(scratch / "checkpoints", [])
        arrays = _mc_arrays(0)
        arrays[where[1]] = np.array([Evil(canary)], dtype=object)
        (scratch / "checkpoints" / where[0]).write_bytes(_npz(arrays))
        ev = evaluate(scratch / "checkpoints", prepared)
        assert not ev.valid, ev
        assert not canary.exists(), "the evaluator unpickled an object array"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
