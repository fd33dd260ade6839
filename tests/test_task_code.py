"""Trusted task code is each task's own rule, not a copy: generic code lives in pytest_mlgym.sdk.

Two Python files of different tasks (the trusted ``private/*.py`` and ``prepare.py``, and the
workspace code and tests too) that mostly match are a copy to move into the SDK (or a family
module); a private file equal to a workspace file is a copy to declare once (``shared:``).
"""
from __future__ import annotations

import difflib
import itertools
import re
from pathlib import Path

import pytest

TASKS = Path(__file__).resolve().parent.parent / "tasks"
NEAR_COPY = 0.6  # difflib's ratio over lines: above it, two files are mostly the same code


def code(task: Path) -> list[Path]:
    return sorted(p for p in task.rglob("*.py") if "__pycache__" not in p.parts)


SETTING = re.compile(r"^[A-Z][A-Z0-9_]* = [^(]*$")  # a top-level `NAME = <literal>`: a setting, not code


def code_lines(path: Path) -> list[str]:
    """The file's code lines, stripped, without blank lines, comments and settings (two tasks may
    well train with the same GAMMA: a settings file over a shared trainer is no copy)."""
    out = []
    for line in path.read_text().splitlines():
        line = line.split("  #")[0].strip()
        if line and not line.startswith("#") and not SETTING.match(line):
            out.append(line)
    return out


def similarity(a: list[str], b: list[str]) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def test_no_task_file_is_a_near_copy_of_another_tasks():
    files = [(t.name, f) for t in sorted(TASKS.iterdir()) if t.is_dir() for f in code(t)]
    assert len(files) >= 13, files
    lines = {f: code_lines(f) for _, f in files}
    copies = []
    for (ta, a), (tb, b) in itertools.combinations(files, 2):
        if ta != tb and len(lines[a]) > 15 and len(lines[b]) > 15:
            ratio = similarity(lines[a], lines[b])
            if ratio > NEAR_COPY:
                copies.append(f"{a.relative_to(TASKS)} ~ {b.relative_to(TASKS)}: {ratio:.2f}")
    assert not copies, "near-copies of trusted code (move the shared part into pytest_mlgym.sdk):\n" + "\n".join(copies)


def test_no_private_file_copies_a_workspace_file():
    same = []
    for task in sorted(p for p in TASKS.iterdir() if p.is_dir()):
        workspace = {f.read_bytes(): f for f in (task / "workspace").rglob("*") if f.is_file()}
        for f in (task / "private").rglob("*"):
            if f.is_file() and f.read_bytes() in workspace:
                same.append(f"{f.relative_to(TASKS)} == {workspace[f.read_bytes()].relative_to(TASKS)}")
    assert not same, "declare the file once in task.yaml's shared: list instead:\n" + "\n".join(same)


@pytest.mark.parametrize("a, b, expected", [
    (["x = 1", "y = 2", "z = 3"], ["x = 1", "y = 2", "z = 3"], 1.0),
    (["x = 1", "y = 2"], ["p = 1", "q = 2"], 0.0),
])
def test_similarity_measures_shared_lines(a, b, expected):
    assert similarity(a, b) == pytest.approx(expected)
