"""Shared fixtures for the engine tests."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import pytest_mlgym.env  # noqa: F401  (numpy cannot be re-imported by in-process pytester runs)
from pytest_mlgym.task import Task, load_task

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def tiny() -> Task:
    """A real task, small enough for engine tests: guess a hidden number (baseline 6, best 10)."""
    return load_task(DATA / "tasks" / "tiny")


@pytest.fixture
def bench(pytester: pytest.Pytester, monkeypatch, tmp_path_factory) -> pytest.Pytester:
    """A project with the tiny task and the benchmark test, as a user would lay it out."""
    monkeypatch.setenv("MLGYM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delitem(sys.modules, "test_bench", raising=False)  # the outer run's copy, if collected
    shutil.copytree(DATA / "tasks" / "tiny", pytester.path / "tasks" / "tiny")
    shutil.copy(ROOT / "tasks" / "test_bench.py", pytester.path / "tasks" / "test_bench.py")
    return pytester
