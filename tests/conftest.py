"""Shared fixtures for the engine tests."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from pytest_mlgym.task import Task, load_task

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a test using pytester sets it up, import what an in-process run must not import first:
    pytester drops, when the test ends, every module imported since it was made; numpy cannot be
    imported twice, and a docker client cached across runs then fails with "You can only merge
    into CookieJar"; and a package keeps a dropped submodule as its attribute, so the plugin's lazy
    ``from .report import summary`` would get the last run's module while the renderers import a new
    one (two ``Summary`` classes). Here rather than at the top of this file, so that collection does not pay."""
    if "pytester" in getattr(item, "fixturenames", ()):
        import docker  # noqa: F401
        import pytest_mlgym.env  # noqa: F401
        import pytest_mlgym.report.gates  # noqa: F401
        import pytest_mlgym.report.html  # noqa: F401
        import pytest_mlgym.report.summary  # noqa: F401
        import pytest_mlgym.report.terminal  # noqa: F401
        import pytest_mlgym.report.trust  # noqa: F401


@pytest.fixture
def tiny() -> Task:
    """A real task, small enough for engine tests: guess a hidden number (baseline 6, best 10)."""
    return load_task(DATA / "tasks" / "tiny")


@pytest.fixture
def bench(pytester: pytest.Pytester, monkeypatch, tmp_path_factory) -> pytest.Pytester:
    """A project with the tiny task and the benchmark test, as a user would lay it out."""
    monkeypatch.setenv("MLGYM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    # as pyproject.toml's addopts for this repo: plugins installed here that the project does not use
    # (pytest-benchmark would warn in every run under xdist)
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:anyio -p no:benchmark")
    monkeypatch.delitem(sys.modules, "test_bench", raising=False)  # the outer run's copy, if collected
    shutil.copytree(DATA / "tasks" / "tiny", pytester.path / "tasks" / "tiny")
    shutil.copy(ROOT / "tasks" / "test_bench.py", pytester.path / "tasks" / "test_bench.py")
    return pytester


def pytest_terminal_summary(terminalreporter) -> None:
    """After a run with red-team attacks (tests/security), count per backend the attacks tried, those
    contained, those a backend documents it cannot contain (xfail, with the reason), and failures."""
    counts: dict[str, dict[str, set]] = {}
    for outcome in ("passed", "failed", "xfailed", "skipped", "error"):
        for rep in terminalreporter.stats.get(outcome, []):
            props = dict(getattr(rep, "user_properties", None) or [])
            if "attack" not in props:
                continue
            row = counts.setdefault(props["backend"], {k: set() for k in ("contained", "xfail", "failed", "skipped")})
            if outcome == "passed" and rep.when == "call":
                row["contained"].add(rep.nodeid)
            elif outcome == "xfailed":
                row["xfail"].add(rep.nodeid)
            elif outcome in ("failed", "error"):
                row["failed"].add(rep.nodeid)
            elif outcome == "skipped":
                row["skipped"].add(rep.nodeid)
    if not counts:
        return
    terminalreporter.write_sep("=", "red team: attacks tried and contained, per backend")
    for backend, row in sorted(counts.items()):
        row["contained"] -= row["failed"]  # a test that passed its call but failed teardown
        tried = len(row["contained"]) + len(row["xfail"]) + len(row["failed"])
        line = (f"{backend:<14} {tried:3d} tried  {len(row['contained']):3d} contained  "
                f"{len(row['xfail']):3d} not containable here (xfail, reason given)  {len(row['failed']):3d} FAILED")
        if row["skipped"]:
            line += f"  ({len(row['skipped'])} not run: backend unavailable)"
        terminalreporter.write_line(line, red=bool(row["failed"]), green=not row["failed"] and not row["xfail"])
