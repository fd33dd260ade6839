"""rl_meta_maze: the budgets task.yaml declares, train.py -> the real evaluator end to end, and a
folder shaped for another task refused with a one-line reason. The checkpoint reader's cases,
common to the gymnax tasks, are in tests/test_sdk_gymnax.py."""
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


def test_the_budgets_match_train_py():
    lite_steps = int(re.search(r"^TOTAL_ENV_STEPS = ([\d_]+)", (TASK.workspace_dir / "train.py").read_text(),
                               re.MULTILINE).group(1))
    for size, scale in (("lite", 1), ("full", 10)):
        budget = TASK.size(size).public["budget.json"]
        assert budget["size"] == size and budget["scale"] == scale and budget["seeds"] == 3
        assert budget["env_steps_per_seed"] == scale * lite_steps == {"lite": 1_000_000, "full": 10_000_000}[size]


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
    ev = evaluate(ws / "checkpoints", prepared)
    assert ev.valid and np.isfinite(ev.score) and np.isfinite(ev.dev_score), ev
    assert len(ev.metrics["seed_means"]) == len(ev.dev_metrics["seed_means"]) == 3


def test_reference_checkpoints_are_small_and_in_the_format():
    ref = TASK.path / "reference" / "checkpoints"
    assert sum(p.stat().st_size for p in ref.iterdir()) < 5 << 20
    assert sorted(p.name for p in ref.iterdir()) == ["config.json", "seed0.npz", "seed1.npz", "seed2.npz"]


def test_a_mountain_car_folder_is_refused_in_one_line(tmp_path, prepared):
    shutil.copytree(TASK.path.parent / "rl_mountain_car" / "workspace" / "sample_checkpoints", tmp_path / "checkpoints")
    ev = evaluate(tmp_path / "checkpoints", prepared)
    assert ev.reason == 'config.json: env: must be "MetaMaze-misc"', ev
    (tmp_path / "checkpoints" / "config.json").write_text(json.dumps({"env": "MetaMaze-misc", "hidden": [64, 64],
                                                                      "activation": "tanh"}))
    ev = evaluate(tmp_path / "checkpoints", prepared)
    assert ev.reason == "seed0.npz: arrays must be exactly b0, b1, b2, obs_mean, obs_std, w0, w1, w2; " \
                        "unexpected log_std", ev
