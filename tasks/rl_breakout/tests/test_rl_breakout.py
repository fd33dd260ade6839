"""rl_breakout: the budgets task.yaml declares, the real evaluator on the sample, a hand-made
ball-tracking policy, several network shapes and a checkpoint folder of the old layout, and
train.py end to end on a tiny budget. The checkpoint reader's cases, common to the gymnax tasks,
are in tests/test_sdk_gymnax.py."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_mlgym.evaluation import Evaluation, run_evaluator
from pytest_mlgym.task import load_task

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


def policy(widths=(32, 32), seed=0) -> dict:
    rng = np.random.default_rng(seed)
    sizes = [400, *widths, 3]
    arrays = {"obs_mean": np.zeros(400, np.float32), "obs_std": np.ones(400, np.float32)}
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
    return {"w0": w0, "b0": b0, "w1": w1, "b1": np.zeros(3, np.float32),
            "obs_mean": np.zeros(400, np.float32), "obs_std": np.ones(400, np.float32)}


def write(folder: Path, hidden, arrays_per_seed, activation="relu") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"env": "Breakout-MinAtar", "hidden": list(hidden),
                                                    "activation": activation}))
    for k, arrays in enumerate(arrays_per_seed):
        np.savez(folder / f"seed{k}.npz", **arrays)
    return folder


def test_the_budgets_match_train_py():
    total = int(re.search(r"^TOTAL_STEPS = ([\d_]+)", (TASK.workspace_dir / "train.py").read_text(), re.M).group(1))
    for size, scale in (("lite", 1), ("full", 10)):
        budget = TASK.size(size).public["budget.json"]
        assert budget["size"] == size and budget["scale"] == scale and budget["seeds"] == 3
        assert budget["env_steps_per_seed"] == scale * total == {"lite": 1_000_000, "full": 10_000_000}[size]


def test_the_sample_is_valid_and_poor(tmp_path, prepared):
    shutil.copytree(TASK.workspace_dir / "sample_checkpoints", tmp_path / "checkpoints")
    ev = evaluate(tmp_path / "checkpoints", prepared)
    assert 0 <= ev.score < 2 and 0 <= ev.dev_score < 2, ev


def test_a_ball_tracking_policy_scores_far_above_random(tmp_path, prepared):
    ev = evaluate(write(tmp_path / "checkpoints", [100], [tracker()] * 3), prepared)
    assert ev.score > 40 and ev.dev_score > 40, ev


def test_checkpoints_of_several_shapes_are_accepted(tmp_path, prepared):
    """Three seeds of one config share its shapes; each seed its own weights (layer widths up to 256)."""
    ev = evaluate(write(tmp_path / "checkpoints", [256], [policy((256,), seed=k) for k in range(3)], "tanh"), prepared)
    assert ev.valid and len(ev.metrics["seed_means"]) == 3, ev
    ev = evaluate(write(tmp_path / "deep", [8, 24, 16], [policy((8, 24, 16), seed=k) for k in range(3)], "silu"),
                  prepared)
    assert ev.valid, ev


def test_a_folder_of_the_old_layout_says_what_is_missing(tmp_path, prepared):
    """Before the gymnax family, the widths and activation were arrays in each .npz and there was no config.json."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for k in range(3):
        np.savez(folder / f"seed{k}.npz", hidden=np.array([32, 32]), activation=np.array("relu"),
                 **{n: a for n, a in policy().items() if not n.startswith("obs")})
    assert evaluate(folder, prepared).reason == "missing config.json in checkpoints/"
    write(folder, [32, 32], [])
    assert "unexpected activation, hidden" in evaluate(folder, prepared).reason


@pytest.mark.slow
def test_train_py_writes_valid_checkpoints_on_a_tiny_budget(tmp_path, prepared):
    ws = TASK.copy_workspace(tmp_path / "ws")
    shutil.copytree(prepared.public, ws / "data")
    src = (ws / "train.py").read_text()
    (ws / "train.py").write_text(re.sub(r"^TOTAL_STEPS = .*$", "TOTAL_STEPS = 80_000", src, flags=re.M))
    proc = subprocess.run([sys.executable, "train.py"], cwd=ws, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lite budget: 81,920 env steps per seed" in proc.stdout
    assert sorted(p.name for p in (ws / "checkpoints").iterdir()) == ["config.json", "seed0.npz", "seed1.npz",
                                                                     "seed2.npz"]
    ev = evaluate(ws / "checkpoints", prepared)
    assert ev.valid, ev
