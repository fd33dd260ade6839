"""rl_meta_maze: the budget files of both sizes, train.py -> evaluator end to end, and
checkpoint folders the evaluator must refuse with a one-line reason (before any JAX work)."""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TASK = Path(__file__).resolve().parents[2] / "tasks" / "rl_meta_maze"
ENV_NAME, OBS_DIM, OUT_DIM, SEEDS = "MetaMaze-misc", 15, 4, 3


def evaluate(folder: Path) -> dict:
    env = {**os.environ, "MLGYM_SEED": "0", "MLGYM_SIZE": "lite"}
    env.pop("MLGYM_PRIVATE_DATA", None)
    proc = subprocess.run([sys.executable, str(TASK / "private" / "evaluate.py"), folder.name], cwd=folder.parent,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_checkpoints(folder: Path, hidden=(8, 8), activation="tanh", config=None, seed=0) -> Path:
    """A valid (random) checkpoint folder in the documented format."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [OBS_DIM, *hidden, OUT_DIM]
    for k in range(SEEDS):
        arrays = {"obs_mean": np.zeros(OBS_DIM, np.float32), "obs_std": np.ones(OBS_DIM, np.float32)}
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            arrays[f"w{i}"] = rng.normal(0, 0.1, (a, b)).astype(np.float32)
            arrays[f"b{i}"] = np.zeros(b, np.float32)
        np.savez(folder / f"seed{k}.npz", **arrays)
    cfg = config if config is not None else {"env": ENV_NAME, "hidden": list(hidden), "activation": activation}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def edit_npz(path: Path, **changes):
    with np.load(path) as z:
        arrays = dict(z)
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(path, **arrays)


def assert_invalid(folder: Path, *words):
    result = evaluate(folder)
    assert set(result) == {"invalid"}, result
    reason = result["invalid"]
    assert reason and "\n" not in reason
    for w in words:
        assert w in reason, reason


# ---- sizes: no data, only budgets -------------------------------------------------------------
@pytest.mark.parametrize("size, scale", [("lite", 1), ("full", 10)])
def test_prepare_writes_the_budget_of_each_size(tmp_path, size, scale):
    env = {k: v for k, v in os.environ.items() if k != "MLGYM_DATA_DIR"}  # no data needed at any size
    proc = subprocess.run([sys.executable, "prepare.py", "--size", size, "--out", str(tmp_path)], cwd=TASK,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    budget = json.loads((tmp_path / "public" / "budget.json").read_text())
    lite_steps = int(re.search(r"^TOTAL_ENV_STEPS = ([\d_]+)", (TASK / "workspace" / "train.py").read_text(),
                               re.MULTILINE).group(1))
    assert budget["size"] == size and budget["scale"] == scale and budget["seeds"] == SEEDS
    assert budget["env_steps_per_seed"] == scale * lite_steps == {"lite": 1_000_000, "full": 10_000_000}[size]
    assert (tmp_path / "private").is_dir()


def test_prepare_refuses_an_unknown_size(tmp_path):
    proc = subprocess.run([sys.executable, "prepare.py", "--size", "huge", "--out", str(tmp_path)], cwd=TASK,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "unknown size" in proc.stderr


def test_train_writes_checkpoints_the_evaluator_scores(tmp_path):
    """train.py with a tiny budget (one PPO update) -> a valid checkpoint folder -> a finite score."""
    ws = tmp_path / "ws"
    shutil.copytree(TASK / "workspace", ws)
    (ws / "data").mkdir()
    (ws / "data" / "budget.json").write_text(json.dumps({"size": "lite", "scale": 0.001, "wall_clock_s": 600}))
    proc = subprocess.run([sys.executable, "train.py"], cwd=ws, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (ws / "checkpoints").iterdir()) == ["config.json", "seed0.npz", "seed1.npz",
                                                                     "seed2.npz"]
    result = evaluate(ws / "checkpoints")
    assert "invalid" not in result, result
    assert np.isfinite(result["mean_return"]) and result["episodes"] == 3072 and result["policy"] == "greedy"
    assert len(result["seed_means"]) == SEEDS
    assert evaluate(ws / "checkpoints") == result  # same artefact, same score


def test_reference_checkpoints_are_small_and_valid_format(tmp_path):
    ref = TASK / "reference" / "checkpoints"
    assert sum(p.stat().st_size for p in ref.iterdir()) < 5 << 20
    assert sorted(p.name for p in ref.iterdir()) == ["config.json", "seed0.npz", "seed1.npz", "seed2.npz"]


# ---- malformed checkpoint folders ----------------------------------------------------------------
def test_missing_seed_file(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints")
    (ck / "seed2.npz").unlink()
    assert_invalid(ck, "missing seed2.npz")


def test_missing_config(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints")
    (ck / "config.json").unlink()
    assert_invalid(ck, "missing config.json")


def test_unexpected_extra_file(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints")
    (ck / "seed3.npz").write_bytes((ck / "seed0.npz").read_bytes())
    assert_invalid(ck, "unexpected file", "seed3.npz")


def test_artefact_that_is_a_file_not_a_folder(tmp_path):
    path = tmp_path / "checkpoints"
    path.write_bytes(b"PK\x03\x04 not a folder")
    assert_invalid(path, "must be a folder")


def test_wrong_weight_shape(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints")
    edit_npz(ck / "seed1.npz", w1=np.zeros((8, 9), np.float32))
    assert_invalid(ck, "seed1.npz", "w1", "shape")


def test_shapes_must_match_the_config(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints", config={"env": ENV_NAME, "hidden": [16, 8], "activation": "tanh"})
    assert_invalid(ck, "w0", "expected (15, 16)")


def test_missing_and_extra_arrays(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints")
    edit_npz(ck / "seed0.npz", obs_std=None, log_std=np.zeros(1, np.float32))
    assert_invalid(ck, "seed0.npz", "missing obs_std", "unexpected log_std")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_parameters(tmp_path, value):
    ck = write_checkpoints(tmp_path / "checkpoints")
    w = np.zeros((8, 8), np.float32)
    w[3, 4] = value
    edit_npz(ck / "seed0.npz", w1=w)
    assert_invalid(ck, "seed0.npz", "NaN or inf")


def test_integer_arrays_are_refused(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints")
    edit_npz(ck / "seed0.npz", b0=np.zeros(8, np.int64))
    assert_invalid(ck, "dtype int64")


def test_non_positive_obs_std(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints")
    edit_npz(ck / "seed2.npz", obs_std=np.array([1.0] * 14 + [0.0], np.float32))
    assert_invalid(ck, "obs_std must be positive")


def test_object_array_is_refused_without_unpickling(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints")
    marker = tmp_path / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = Boom(str(marker))
    edit_npz(ck / "seed0.npz", w0=payload)
    assert_invalid(ck, "seed0.npz", "not a readable .npz")
    assert not marker.exists()


def test_a_pickle_named_npz_is_refused(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints")
    marker = tmp_path / "pwned"
    (ck / "seed1.npz").write_bytes(pickle.dumps(Boom(str(marker))))
    assert_invalid(ck, "seed1.npz", "not a readable .npz")
    assert not marker.exists()


def test_oversized_npz_is_refused(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints")
    np.savez_compressed(ck / "seed0.npz", w0=np.zeros(5_000_000, np.float32))  # 20 MB of zeros, tiny on disk
    assert_invalid(ck, "seed0.npz", "larger than")


@pytest.mark.parametrize("config, words", [
    ({"env": ENV_NAME, "hidden": [8, 8], "activation": "sigmoid"}, ['"activation" must be one of']),
    ({"env": ENV_NAME, "hidden": [8, 8, 8, 8], "activation": "tanh"}, ['"hidden" must be a list of 1 to 3']),
    ({"env": ENV_NAME, "hidden": [300], "activation": "tanh"}, ["in [1, 256]"]),
    ({"env": ENV_NAME, "hidden": [256, 256, 256], "activation": "tanh"}, ["135,936 weights; at most 80,000"]),
    ({"env": ENV_NAME, "hidden": [8, True], "activation": "tanh"}, ['"hidden"']),
    ({"env": "MountainCarContinuous-v0", "hidden": [8, 8], "activation": "tanh"}, [f'"env" must be "{ENV_NAME}"']),
    ({"env": ENV_NAME, "hidden": [8, 8]}, ["exactly the keys"]),
    ([8, 8], ["exactly the keys"]),
])
def test_bad_config(tmp_path, config, words):
    ck = write_checkpoints(tmp_path / "checkpoints", config=config)
    assert_invalid(ck, "config.json", *words)


def test_config_that_is_not_json(tmp_path):
    ck = write_checkpoints(tmp_path / "checkpoints")
    (ck / "config.json").write_bytes(b"\xff\xfe{hidden: 8")
    assert_invalid(ck, "config.json is not valid JSON")


class Boom:
    """Unpickling this would create a marker file: the evaluator must never unpickle."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))
