"""rl_breakout: the size budgets, the checkpoint evaluator on good, poor and malformed
checkpoint folders, and train.py end to end on a tiny budget.

prepare.py and the evaluator run as the harness runs them: subprocesses, the evaluator in a
scratch folder holding the artefact, its last stdout line being one JSON object.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TASK = Path(__file__).resolve().parents[2] / "tasks" / "rl_breakout"


def prepare(out: Path, size: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "prepare.py", "--size", size, "--out", str(out)], cwd=TASK,
                          capture_output=True, text=True, timeout=60)


def evaluate(scratch: Path, name: str = "checkpoints") -> dict:
    proc = subprocess.run([sys.executable, str(TASK / "private" / "evaluate.py"), name], cwd=scratch,
                          env={**os.environ, "MLGYM_SEED": "0", "MLGYM_SIZE": "lite"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "invalid" in result:
        assert result["invalid"] and "\n" not in result["invalid"]
    return result


def policy(widths=(32, 32), activation="relu", seed=0) -> dict:
    rng = np.random.default_rng(seed)
    sizes = [400, *widths, 3]
    arrays = {"hidden": np.array(widths, np.int64), "activation": np.array(activation)}
    for i in range(len(sizes) - 1):
        arrays[f"w{i}"] = (rng.standard_normal((sizes[i], sizes[i + 1])) * 0.1).astype(np.float32)
        arrays[f"b{i}"] = np.zeros(sizes[i + 1], np.float32)
    return arrays


def tracker() -> dict:
    """A hand-made policy: one hidden unit per (paddle column, ball column) pair, then move the
    paddle towards the ball's column. Exercises the documented format: C-order flattening of the
    (row, column, channel) observation and `x @ w + b` layers."""
    def at(row, col, channel):
        return (row * 10 + col) * 4 + channel
    w0, b0 = np.zeros((400, 100), np.float32), np.full(100, -1.0, np.float32)
    w1 = np.zeros((100, 3), np.float32)
    for paddle in range(10):
        for ball in range(10):
            unit = paddle * 10 + ball
            w0[at(9, paddle, 0), unit] = 1.0  # paddle channel, bottom row
            for row in range(10):
                w0[at(row, ball, 1), unit] = 1.0  # ball channel, any row
            w1[unit, 0 if ball == paddle else 1 if ball < paddle else 2] = 20.0  # stay / left / right
    return {"hidden": np.array([100]), "activation": np.array("relu"), "w0": w0, "b0": b0,
            "w1": w1, "b1": np.zeros(3, np.float32)}


def write(folder: Path, arrays_per_seed) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, arrays in enumerate(arrays_per_seed):
        np.savez(folder / f"seed{k}.npz", **arrays)
    return folder


def test_budgets_lite_matches_train_py_and_full_is_the_published_10M_steps(tmp_path):
    budgets = {}
    for size in ("lite", "full"):
        proc = prepare(tmp_path / size, size)
        assert proc.returncode == 0, proc.stderr
        budgets[size] = json.loads((tmp_path / size / "public" / "budget.json").read_text())
    total = re.search(r"^TOTAL_STEPS = ([\d_]+)", (TASK / "workspace" / "train.py").read_text(), re.M)
    assert budgets["lite"]["scale"] == 1 and budgets["lite"]["env_steps_per_seed"] == int(total.group(1))
    assert budgets["full"]["env_steps_per_seed"] == 10_000_000 == budgets["full"]["scale"] * int(total.group(1))
    assert prepare(tmp_path / "x", "huge").returncode != 0


def test_sample_is_valid_poor_and_scored_identically_twice(tmp_path):
    shutil.copytree(TASK / "workspace" / "sample_checkpoints", tmp_path / "checkpoints")
    first, second = evaluate(tmp_path), evaluate(tmp_path)
    assert first == second
    assert first["episodes"] >= 1024 and 0 <= first["mean_return"] < 2


def test_a_ball_tracking_policy_scores_far_above_random(tmp_path):
    write(tmp_path / "checkpoints", [tracker()] * 3)
    result = evaluate(tmp_path)
    assert result["mean_return"] > 40, result


def test_checkpoints_of_different_shapes_and_activations_are_accepted(tmp_path):
    write(tmp_path / "checkpoints", [policy((16,)), policy((8, 24, 512), "tanh"), policy((64, 64))])
    result = evaluate(tmp_path)
    assert "mean_return" in result and {f"mean_return_seed{k}" for k in range(3)} <= set(result)


def replace(arrays: dict, **changes) -> dict:
    out = {**arrays, **changes}
    return {k: v for k, v in out.items() if v is not None}


GOOD = policy()
NAN_W1 = GOOD["w1"].copy()
NAN_W1[3, 4] = np.nan
BAD = {
    "wrong-shape": (replace(GOOD, w1=np.zeros((32, 31), np.float32)), "'w1' must be a float array of shape (32, 32)"),
    "nan": (replace(GOOD, w1=NAN_W1), "'w1' has NaN or inf"),
    "inf-bias": (replace(GOOD, b2=np.array([0, np.inf, 0], np.float32)), "'b2' has NaN or inf"),
    "int-weights": (replace(GOOD, b2=np.zeros(3, np.int64)), "'b2' must be a float array"),
    "missing-layer": (replace(GOOD, w2=None), "array 'w2' missing"),
    "extra-array": (replace(GOOD, value_w0=np.zeros(3, np.float32)), "unexpected array(s) ['value_w0']"),
    "too-wide": (replace(policy((600,))), "'hidden' must be 1-3 integer widths in 1..512"),
    "too-deep": (replace(policy((8, 8, 8, 8))), "'hidden' must be 1-3 integer widths"),
    "float-hidden": (replace(GOOD, hidden=np.array([32.0, 32.0])), "'hidden' must be 1-3 integer widths"),
    "no-config": (replace(GOOD, activation=None), "needs config arrays 'hidden' and 'activation'"),
    "bad-activation": (replace(GOOD, activation=np.array("gelu")), "'activation' must be the string 'relu' or 'tanh'"),
    "object-array": (replace(GOOD, b0=np.array([None, "x"], dtype=object)), "not a readable .npz of plain arrays"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_malformed_checkpoints_are_invalid_with_a_reason(tmp_path, case):
    arrays, reason = BAD[case]
    folder = write(tmp_path / "checkpoints", [GOOD, GOOD])
    np.savez(folder / "seed2.npz", **arrays)  # object arrays get pickled: the evaluator must not unpickle
    result = evaluate(tmp_path)
    assert reason in result.get("invalid", ""), result
    assert result["invalid"].startswith("seed2.npz")


def test_missing_or_junk_or_linked_files_are_invalid(tmp_path):
    folder = write(tmp_path / "checkpoints", [GOOD, GOOD])
    assert "seed2.npz missing" in evaluate(tmp_path)["invalid"]
    (folder / "seed2.npz").write_bytes(b"\x00junk" * 50)
    assert "seed2.npz: not a readable .npz" in evaluate(tmp_path)["invalid"]
    (folder / "seed2.npz").unlink()
    (folder / "seed2.npz").symlink_to(folder / "seed1.npz")
    assert "seed2.npz missing" in evaluate(tmp_path)["invalid"]
    (folder / "seed2.npz").unlink()
    np.savez_compressed(folder / "seed2.npz", **replace(GOOD, w0=np.zeros((400, 32), np.float32),
                                                        big=np.zeros(30_000_000, np.float32)))
    assert "seed2.npz: arrays larger than" in evaluate(tmp_path)["invalid"]  # refused before decompressing
    np.savez(tmp_path / "file.npz", **GOOD)
    assert "must be a folder" in evaluate(tmp_path, "file.npz")["invalid"]


@pytest.mark.slow
def test_train_py_writes_valid_checkpoints_on_a_tiny_budget(tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(TASK / "workspace", ws)
    (ws / "data").mkdir()
    proc = prepare(tmp_path / "budget", "lite")
    assert proc.returncode == 0, proc.stderr
    shutil.copy(tmp_path / "budget" / "public" / "budget.json", ws / "data" / "budget.json")
    src = (ws / "train.py").read_text()
    (ws / "train.py").write_text(re.sub(r"^TOTAL_STEPS = .*$", "TOTAL_STEPS = 80_000", src, flags=re.M))
    proc = subprocess.run([sys.executable, "train.py"], cwd=ws, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lite budget: 81,920 env steps per seed" in proc.stdout
    result = evaluate(ws)
    assert "mean_return" in result, result
