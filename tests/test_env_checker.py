"""Gymnasium's own env checker passes on every shipped task and every fixture task.

``check_env`` resets with a seed twice and compares the observations (the workspace is a fresh
temporary folder each reset: the observations name it, never show its path), steps a seeded
sample of the action space twice from the same reset and compares what came back, and checks the
spaces, render and close. A sample of the action space is one alphanumeric word of text, run as a
shell command in the task's sandbox ("command not found"). Lite data is prepared once into the
cache folder, as the task checks do.
"""
from __future__ import annotations

import gc
import warnings
from pathlib import Path

import gymnasium
import pytest
from gymnasium.envs.registration import EnvSpec
from gymnasium.utils.env_checker import check_env

from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.env.registration import ENTRY_POINT
from pytest_mlgym.task import DataMissing

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = sorted(p.parent for p in [*(ROOT / "tasks").glob("*/task.yaml"),
                                    *(ROOT / "tests" / "data" / "tasks").glob("*/task.yaml")])


@pytest.mark.parametrize("folder", FOLDERS, ids=[f"{p.parent.name}/{p.name}" for p in FOLDERS])
def test_check_env_passes(folder: Path):
    spec = EnvSpec(id=f"mlgym/{folder.name}", entry_point=ENTRY_POINT,
                   kwargs={"task": folder.name, "roots": (str(folder.parent),), "max_steps": 5})
    env = gymnasium.make(spec)
    gc.collect()  # what earlier tests in this process left for the collector warns now, not below as this env's
    try:
        assert isinstance(env.unwrapped, MLGymEnv) and env.unwrapped.task.path == folder
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped)
    except DataMissing as e:
        pytest.skip(str(e))
    finally:
        env.close()
    said = [str(w.message) for w in caught if "render fps" not in str(w.message)]  # a text env has no fps
    assert said == []
