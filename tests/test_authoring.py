"""The task authoring tools: task.yaml line edits, measure, new-task and check-task."""
from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pytest_mlgym.__main__ import main
from pytest_mlgym.authoring import yamledit
from pytest_mlgym.task import load_task

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "tasks").glob("*/task.yaml"))


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest_mlgym", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("yml", SHIPPED, ids=[p.parent.name for p in SHIPPED])
def test_a_size_edit_changes_one_line_of_a_shipped_task_yaml(yml, tmp_path):
    copy = tmp_path / "task.yaml"
    shutil.copy(yml, copy)
    values = {"baseline": 0.123456789012345, "dev_baseline": 2.5e-07, "seconds": 12.5}
    yamledit.set_size_values(copy, "lite", values)
    before, after = yml.read_text(), copy.read_text()
    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert len(changed) == 2, changed  # one line out, one line in: comments and the rest as they were
    want = yaml.safe_load(before)
    want["sizes"]["lite"].update(values)
    assert yaml.safe_load(after) == want


def test_block_mappings_keep_comments_and_nested_keys(tmp_path):
    text = ("id: x\nsizes:\n  # how it was measured\n  lite:\n    baseline: 1.0   # three runs\n"
            "    public:\n      budget.json: {steps: 10}\n    tolerance: 0.1\n  full: {baseline: 2, tolerance: 0}\n"
            "limits: {}\n")
    out = yamledit.edit(text, "lite", {"baseline": 2.5, "dev_baseline": 1e-05})
    assert "    baseline: 2.5   # three runs\n" in out and "# how it was measured" in out
    assert "    dev_baseline: 1.0e-05\n  full:" in out  # after the entry's last line, read back as a float
    assert yaml.safe_load(out)["sizes"]["lite"] == {"baseline": 2.5, "dev_baseline": 1e-05, "tolerance": 0.1,
                                                   "public": {"budget.json": {"steps": 10}}}
    assert yamledit.edit(text, "full", {"published": True}).count("published: true}") == 1


@pytest.mark.parametrize("text, why", [
    ("sizes: {lite: {baseline: 1, tolerance: 0}}\n", "no block 'sizes:'"),
    ("sizes:\n  lite: {baseline: 1,\n    tolerance: 0}\n", "spans lines"),
    ("sizes:\n  full: {baseline: 1, tolerance: 0}\n", "no 'lite:' entry"),
    ("sizes:\n  lite: {baseline: 1, tolerance: 0}\n  lite: {baseline: 2, tolerance: 0}\n", "more than"),
])
def test_what_cannot_be_edited_safely_is_refused(text, why):
    with pytest.raises(yamledit.EditError, match=why):
        yamledit.edit(text, "lite", {"baseline": 3.0})


def test_numbers_read_back_as_the_same_float():
    for x in (0.1, 1e-05, 3.0, 123456789.125, -2.5e-300, 7):
        assert yaml.safe_load(f"v: {yamledit.number(x)}")["v"] == x
    with pytest.raises(yamledit.EditError):
        yamledit.number(float("nan"))


def test_new_task_passes_check_task_out_of_the_box(tmp_path, capsys):
    assert main(["new-task", "demo_task", "--dir", str(tmp_path)]) == 0
    folder = tmp_path / "demo_task"
    assert "wrote" in capsys.readouterr().out
    lite = load_task(folder).spec.sizes["lite"]
    assert lite.baseline > 0.3 and lite.dev_baseline > 0.3 and lite.seconds is not None  # measured
    assert lite.reference > lite.baseline and lite.dev_reference > lite.dev_baseline  # the reference's anchors too
    assert len((folder / "private" / "secret").read_text().strip()) == 64
    assert "# lite: measured by" in (folder / "task.yaml").read_text()  # the template's comment kept
    result = cli("check-task", str(folder), "--require-reference")
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(line.startswith(("PASS demo_task: ", "SKIP demo_task: ")) for line in lines), lines
    assert "PASS demo_task: baseline reproduces" in lines and "PASS demo_task: prepare is deterministic" in lines
    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert own.returncode == 0 and "2 passed" in own.stdout, own.stdout
    assert main(["new-task", "demo_task", "--dir", str(tmp_path), "--no-measure"]) == 1
    assert main(["new-task", "Demo", "--dir", str(tmp_path), "--no-measure"]) == 1
    assert "already exists" in capsys.readouterr().out


def test_measure_writes_the_means_and_suggests_a_tolerance(tmp_path, capsys):
    assert main(["new-task", "demo_measure", "--dir", str(tmp_path), "--no-measure"]) == 0
    folder = tmp_path / "demo_measure"
    assert main(["measure", str(folder), "--runs", "2", "--set-tolerance"]) == 0
    out = capsys.readouterr().out
    assert "run 2/2: test r2 = " in out and "the runs agreed to the bit" in out  # a deterministic baseline
    lite = load_task(folder).spec.sizes["lite"]
    assert lite.baseline > 0.3 and lite.dev_baseline is not None and lite.tolerance == 0.0001  # kept: spread 0
    assert main(["measure", str(folder), "--size", "full"]) == 1
    assert "has no 'full' size" in capsys.readouterr().out


def test_check_task_says_what_failed_in_one_line_and_exits_1(tmp_path, capsys):
    assert main(["new-task", "demo_broken", "--dir", str(tmp_path)]) == 0
    folder = tmp_path / "demo_broken"
    evaluate = folder / "private" / "evaluate.py"
    evaluate.write_text(evaluate.read_text().replace("return {split:", "return {'test' if split else split:"))
    result = cli("check-task", str(folder), "--quick")
    assert result.returncode == 1
    assert ("FAIL demo_broken: evaluator scores dev and test splits: the evaluator returned no dev split: "
            "score() must return {'dev': {'r2': ...}, 'test': {'r2': ...}} (got test metrics only)") in result.stdout
    assert "SKIP demo_broken: baseline reproduces: --quick: the baseline is not run" in result.stdout
    assert cli("check-task", str(tmp_path)).returncode == 4  # not a task folder
