"""Task-specific tests of tasks/sat_heuristic: generator, labels, the hidden test and dev sets, the
shared solver, evaluator guards."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_mlgym.task import load_task

TASK = Path(__file__).resolve().parents[1]
# sha256 of the lite hidden test set: the recorded lite baseline is only valid for these bytes
# (a numpy whose Generator streams differ would change the instances).
LITE_PRIVATE_SHA256 = "14beea5f1920eaae4783b678025fdc2e0ee3e97e21f4a4fdc6a8f0aefa018dbe"


def prepare(out: Path, size: str, count: int | None = None, **env) -> subprocess.CompletedProcess:
    argv = [sys.executable, "prepare.py", "--size", size, "--out", str(out)]
    if count:
        argv += ["--count", str(count)]
    return subprocess.run(argv, cwd=TASK, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """The first 3 lite instances of the public and test sets, and 1 of the dev set."""
    out = tmp_path_factory.mktemp("sat_small")
    assert prepare(out, "lite", 3).returncode == 0
    return out


def evaluate(tmp_path: Path, private: Path, source: str, size: str = "lite", split: str | None = "test", **env) -> dict:
    """The evaluator's result: one split's metrics (``split=None``: the whole line), or ``{"invalid": ...}``."""
    (tmp_path / "heuristic.py").write_text(textwrap.dedent(source))
    proc = subprocess.run([sys.executable, str(TASK / "private" / "evaluate.py"), "heuristic.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MLGYM_PRIVATE_DATA": str(private), "MLGYM_SIZE": size,
                               "MLGYM_SEED": "0", **env})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "invalid" in result:
        return result
    assert set(result) == {"dev", "test"}, result
    return result if split is None else result[split]


def test_lite_prepare_is_deterministic_and_pinned(tmp_path, small):
    for run in ("a", "b"):
        proc = prepare(tmp_path / run, "lite")
        assert proc.returncode == 0, proc.stderr
    for split in ("public", "private/test", "private/dev"):
        assert (tmp_path / "a" / split / "instances.json").read_bytes() == \
               (tmp_path / "b" / split / "instances.json").read_bytes()
    digest = hashlib.sha256((tmp_path / "a" / "private" / "test" / "instances.json").read_bytes()).hexdigest()
    assert digest == LITE_PRIVATE_SHA256
    sets = {split: json.loads((tmp_path / "a" / split / "instances.json").read_text())
            for split in ("public", "private/test", "private/dev")}
    for split, n in (("public", 50), ("private/test", 50), ("private/dev", 10)):
        data = sets[split]
        assert (data["n_vars"], data["n_clauses"], len(data["instances"])) == (60, 256, n)
        n_sat = sum(inst["sat"] for inst in data["instances"])
        assert 0.2 * n <= n_sat <= 0.8 * n  # a real mix of SAT and UNSAT
    # three disjoint sets
    clauses = [[json.dumps(inst["clauses"]) for inst in data["instances"]] for data in sets.values()]
    assert sum(map(len, clauses)) == len(set().union(*clauses)) == 110
    # the public file does not name the seeds of the hidden sets
    assert "seed" not in sets["public"]["generator"] and "2026" not in (TASK / "workspace" / "README.md").read_text()
    # instance i depends on its index only: --count N gives the first N instances of the set
    first = json.loads((small / "private" / "test" / "instances.json").read_text())["instances"]
    assert first == sets["private/test"]["instances"][:3]


def test_full_size_is_generated_without_any_data_dir(tmp_path):
    """Full needs no downloaded data: prepare generates it (here only its first 2 instances per split)."""
    proc = prepare(tmp_path, "full", 2, MLGYM_DATA_DIR=str(tmp_path / "nothing-here"))
    assert proc.returncode == 0, proc.stderr
    for split, n in (("public", 2), ("private/test", 2), ("private/dev", 1)):
        data = json.loads((tmp_path / split / "instances.json").read_text())
        assert (data["n_vars"], data["n_clauses"], len(data["instances"])) == (100, 426, n)
        for inst in data["instances"]:
            assert all(len({abs(l) for l in c}) == 3 and all(1 <= abs(l) <= 100 for l in c)
                       for c in inst["clauses"])


def test_labels_agree_with_an_independent_solver(small):
    pycosat = pytest.importorskip("pycosat")
    for split in ("public", "private/test", "private/dev"):
        for inst in json.loads((small / split / "instances.json").read_text())["instances"]:
            assert (pycosat.solve(inst["clauses"]) != "UNSAT") == inst["sat"]


def test_the_evaluator_solver_is_the_workspace_solver():
    """solver.py lives once, in workspace/ (task.yaml: shared); private/ holds no copy of it."""
    assert load_task(TASK).spec.shared == ["solver.py"] and sorted(p.name for p in (TASK / "private").iterdir()) \
        == ["evaluate.py"]


def test_evaluator_counts_what_the_workspace_solver_counts(tmp_path, small):
    """Same decisions in the evaluator (heuristic in a child process) as in-process, on both splits."""
    solver: dict = {}  # exec'd, so that no __pycache__ lands in the task's workspace/
    exec(compile((TASK / "workspace" / "solver.py").read_text(), "solver.py", "exec"), solver)
    namespace: dict = {}
    source = (TASK / "reference" / "heuristic.py").read_text()
    exec(compile(source, "reference", "exec"), namespace)
    result = evaluate(tmp_path, small / "private", source, split=None)
    for split, n in (("test", 3), ("dev", 1)):
        data = json.loads((small / "private" / split / "instances.json").read_text())
        total = 0
        for inst in data["instances"]:
            dpll = solver["DPLL"](data["n_vars"], inst["clauses"], namespace["heuristic"])
            assert dpll.solve() == inst["sat"]
            total += dpll.decisions
        assert result[split]["cost"] == total and result[split]["instances"] == n, result


def test_an_agents_solver_py_beside_the_heuristic_is_not_used(tmp_path, small):
    """The evaluator's DPLL is the task folder's solver.py: a solver.py the agent leaves beside its
    heuristic (one that would count no decisions at all) changes nothing."""
    honest = evaluate(tmp_path, small / "private", (TASK / "workspace" / "heuristic.py").read_text(), split=None)
    (tmp_path / "solver.py").write_text("raise SystemExit('the agent solver.py ran')\n")
    cheat = evaluate(tmp_path, small / "private", (TASK / "workspace" / "heuristic.py").read_text(), split=None)
    assert {s: cheat[s]["cost"] for s in cheat} == {s: honest[s]["cost"] for s in honest}


def test_each_split_gets_a_fresh_heuristic_process(tmp_path, small):
    """Module state does not carry from the test set into the dev set (or back): a heuristic that
    counts its calls across the evaluation sees only its own split's instances."""
    source = """
        import os
        CALLS = []
        def heuristic(clauses, assignment, conflicts, history, level):
            CALLS.append(level == 0)
            if sum(CALLS) > 3:  # more than three instances in one process
                raise RuntimeError("state carried over")
            lit = clauses[0][0]
            return abs(lit), lit > 0
        """
    result = evaluate(tmp_path, small / "private", source, split=None)
    assert "invalid" not in result and (result["test"]["instances"], result["dev"]["instances"]) == (3, 1), result


@pytest.mark.parametrize("source, reason", [
    ("def heuristic(*args):\n    raise ValueError('boom')\n", "heuristic() raised: ValueError: boom"),
    ("""
     def heuristic(clauses, assignment, *rest):
         done = [v for v in range(1, len(assignment)) if assignment[v] is not None]
         return (done[0] if done else abs(clauses[0][0])), True
     """, "which is already assigned"),
    ("def heuristic(*args):\n    return 0, True\n", "variable 0, outside 1..60"),
    ("def heuristic(*args):\n    return 'x1'\n", "expected a (variable, value) pair"),
    ("def heuristic(clauses, *rest):\n    return abs(clauses[0][0]), 1\n", "value 1 (int); expected True or False"),
    ("def heuristic(clauses, *rest):\n    return True, True\n", "expected an int"),
    ("def heuristic(*args):\n    return None\n", "expected a (variable, value) pair"),
    ("def branch(*args):\n    return 1, True\n", "defines no function heuristic()"),
])
def test_malformed_heuristics_are_invalid_with_a_reason(tmp_path, small, source, reason):
    result = evaluate(tmp_path, small / "private", source)
    assert set(result) == {"invalid"}, result
    assert reason in result["invalid"] and "\n" not in result["invalid"], result


@pytest.mark.parametrize("source, env, reason", [
    # a busy loop is stopped by the CPU-time budget (CPU, so that machine load cannot matter) ...
    ("def heuristic(*args):\n    while True:\n        pass\n", {"SAT_HEURISTIC_CPU_S": "1"},
     "the agent's code used more than its 1 s of CPU time"),
    ("while True:\n    pass\n", {"SAT_HEURISTIC_CPU_S": "1"}, "the agent's code used more than its 1 s of CPU time"),
    # ... and a heuristic that blocks without using CPU by the wall-clock backstop
    ("import time\ndef heuristic(*args):\n    time.sleep(1000)\n", {"SAT_HEURISTIC_WALL_S": "4"},
     "ran past its time budget of 4 s"),
])
def test_heuristics_that_never_return_are_stopped(tmp_path, small, source, env, reason):
    result = evaluate(tmp_path, small / "private", source, **env)
    assert set(result) == {"invalid"} and reason in result["invalid"], result


def test_a_detached_process_counts_against_the_cpu_budget_and_dies(tmp_path, small):
    """Code that double-forks a burner into its own session (no longer a child of anything the
    evaluator started) and then blocks: the burner's CPU time is the agent's, so the 1 s budget
    stops the evaluation long before the 120 s wall-clock backstop, and the burner is gone after."""
    token = f"mlgym-burner-{os.getpid()}-{time.monotonic_ns()}"
    source = f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sh", ["sh", "-c", "while :; do :; done # {token}"])
            os._exit(0)
        os.wait()
        def heuristic(*args):
            time.sleep(1000)
        """
    start = time.monotonic()
    result = evaluate(tmp_path, small / "private", source, SAT_HEURISTIC_CPU_S="1", SAT_HEURISTIC_WALL_S="120")
    assert result.get("invalid", "").endswith("the agent's code used more than its 1 s of CPU time"), result
    assert time.monotonic() - start < 110  # stopped by the CPU budget, not by the backstop
    left = [p.name for p in Path("/proc").glob("[0-9]*") if token.encode() in _cmdline(p)]
    assert not left, f"the detached burner outlived the evaluation: {left}"


def _cmdline(p: Path) -> bytes:
    try:
        return (p / "cmdline").read_bytes()
    except OSError:
        return b""


def test_too_many_decisions_is_invalid(tmp_path, small):
    """Branching on variables that occur in no open clause blows the tree up: stopped by the cap."""
    source = """
        def heuristic(clauses, assignment, *rest):
            used = {abs(l) for c in clauses for l in c}
            free = [v for v in range(1, len(assignment)) if assignment[v] is None]
            return min(free, key=lambda v: (v in used, v)), True
        """
    result = evaluate(tmp_path, small / "private", source, SAT_HEURISTIC_MAX_DECISIONS="50")
    assert "more than 50 decisions" in result.get("invalid", ""), result
