"""Which runs collect a task's own tests (tasks/<id>/tests/), and which folders of tasks a run uses."""
from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def test_no_two_test_modules_of_this_repository_share_a_file_name():
    """pytest imports test modules outside packages by file name: a task's tests/test_<id>.py and a
    leftover tests/tasks/test_<id>.py would clash ("import file mismatch")."""
    modules = [p for p in (ROOT / "tests").rglob("test_*.py") if "data" not in p.relative_to(ROOT / "tests").parts]
    modules += [p for p in (ROOT / "tasks").glob("*/tests/**/test_*.py")]
    seen: dict[str, Path] = {}
    for module in modules:
        assert module.name not in seen, f"{module} and {seen[module.name]}: test modules share a file name"
        seen[module.name] = module


def own_tests(bench, task: str = "tiny") -> None:
    tests = bench.path / "tasks" / task / "tests"
    tests.mkdir(parents=True)
    (tests / f"test_{task}.py").write_text(f"def test_{task}_own():\n    pass\n")
    # never collected, whatever the run: the agent's workspace and the evaluator's private files
    (bench.path / "tasks" / task / "workspace" / "test_agent.py").write_text("def test_agent():\n    pass\n")
    (bench.path / "tasks" / task / "private" / "test_private.py").write_text("def test_private():\n    pass\n")


QUIET = ("-p", "no:hypothesispytest")  # its end-of-run summary imports hypothesis: ~2 s an in-process run


def collected(bench, *args) -> list[str]:
    result = bench.runpytest("--collect-only", "-q", *QUIET, *args)
    return sorted(line for line in result.outlines if "::" in line)


BENCH = "tasks/test_bench.py::test_agent_beats_baseline[tiny-baseline-s0]"
OWN = "tasks/tiny/tests/test_tiny.py::test_tiny_own"


def test_the_test_run_collects_task_tests_and_the_benchmark_run_does_not(bench):
    own_tests(bench)
    assert collected(bench) == [BENCH, OWN]  # no paths: the project's test run
    bench.makeini("[pytest]\ntestpaths = tasks\n")
    assert collected(bench) == [BENCH, OWN]  # testpaths, as this repository's pyproject.toml
    assert collected(bench, "tasks") == [BENCH]  # the benchmark: README's `pytest tasks --agent=...`
    assert collected(bench, "tasks/tiny") == [OWN]  # naming the task folder, its tests or a file in it
    assert collected(bench, "tasks/tiny/tests") == [OWN]
    assert collected(bench, "tasks/tiny/tests/test_tiny.py::test_tiny_own") == [OWN]
    assert collected(bench, "tasks", "tasks/tiny/tests") == [BENCH, OWN]


def test_task_tests_of_several_tasks_do_not_clash(bench):
    shutil.copytree(DATA / "tasks" / "tiny", bench.path / "tasks" / "other")
    yml = bench.path / "tasks" / "other" / "task.yaml"
    yml.write_text(yml.read_text().replace("id: tiny", "id: other"))
    own_tests(bench, "tiny")
    own_tests(bench, "other")
    result = bench.runpytest(*QUIET, "-k", "own")
    result.assert_outcomes(passed=2)


def test_tasks_dir_adds_to_the_default_folder_and_the_ini_replaces_it(bench, tmp_path):
    extra = tmp_path / "more"
    shutil.copytree(DATA / "tasks" / "tiny", extra / "guess")
    yml = extra / "guess" / "task.yaml"
    yml.write_text(yml.read_text().replace("id: tiny", "id: guess"))
    ids = "[[]{}-baseline-s0[]]"
    result = bench.runpytest("tasks", "--collect-only", "-q", *QUIET, f"--mlgym-tasks-dir={extra}")
    result.stdout.fnmatch_lines(["*" + ids.format("guess"), "*" + ids.format("tiny")])  # added
    bench.makeini(f"[pytest]\nmlgym_tasks_dirs = {extra}\n")  # the ini replaces the default tasks/
    result = bench.runpytest("tasks", "--collect-only", "-q", *QUIET)
    result.stdout.fnmatch_lines(["*" + ids.format("guess")])
    assert "tiny-baseline" not in result.stdout.str()
    bench.makeini("[pytest]\nmlgym_tasks_dirs = tasks\n")  # relative to the ini file; the option adds
    result = bench.runpytest("tasks", "--collect-only", "-q", *QUIET, f"--mlgym-tasks-dir={extra}", f"--mlgym-tasks-dir={extra}")
    result.stdout.fnmatch_lines(["*" + ids.format("guess"), "*" + ids.format("tiny")])
    assert result.stdout.str().count("guess-baseline") == 1  # a folder named twice is used once
