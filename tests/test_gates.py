"""CI gates: --mlgym-fail-under-aup, --mlgym-compare with --mlgym-max-regression, and the JUnit XML
(per-test properties and the suite's AUP), through real inner pytest runs under xdist."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pytest_mlgym.report import gates, terminal
from pytest_mlgym.results import ResultsStore, RunRecord

XDIST = ("-n", "2", "-p", "no:cacheprovider")


def oracle(bench, *actions: str) -> None:
    """``--agent=oracle``: a replay agent playing ``actions`` (the tiny task's target is 7: score 10 - |x - 7|)."""
    (bench.path / "agents").mkdir(exist_ok=True)
    (bench.path / "agents" / "oracle.yaml").write_text("policy: replay\ntrajectory: oracle.jsonl\n")
    (bench.path / "agents" / "oracle.jsonl").write_text("\n".join(json.dumps({"action": a}) for a in actions) + "\n")


def rec(task="tiny", agent="oracle", seed=0, sub=10.0, **kw) -> RunRecord:
    return RunRecord(**{**dict(session="stored1", task=task, size="lite", agent=agent, policy="replay", seed=seed,
                               metric="score", direction="max", baseline=6.0, tolerance=0.0, status="submitted",
                               best_attempt=sub, best_submission=sub, finished_at=1.0), **kw})


def gate_lines(result) -> list[str]:
    return [l for l in result.stdout.lines if l.startswith(("PASSED --mlgym", "FAILED --mlgym"))]


def summary(bench) -> dict:
    return json.loads((bench.path / "reports" / "summary.json").read_text())


# -- --mlgym-fail-under-aup ------------------------------------------------------------------------
def test_fail_under_aup_passes_at_the_threshold_and_fails_below_it_under_xdist(bench):
    oracle(bench, "echo 7 > answer.txt", "submit")  # 10: the best method, AUP = tau_max = 0.4
    ok = bench.runpytest("--agent=oracle", "--mlgym-fail-under-aup=0.4", *XDIST)
    ok.assert_outcomes(passed=1)
    assert ok.ret == 0
    assert gate_lines(ok) == ["PASSED --mlgym-fail-under-aup: AUP@1 (best submission, tau_max 0.4) of every agent "
                              ">= 0.4: oracle 0.400"]

    # every agent under test is gated, the built-in baseline agent too (AUP 0.178, as the recorded baseline)
    bad = bench.runpytest("--agent=oracle", "--agent=baseline", "--mlgym-fail-under-aup", "0.3", *XDIST)
    bad.assert_outcomes(passed=2)  # every test passed: the gate alone fails the run
    assert bad.ret == pytest.ExitCode.TESTS_FAILED
    assert gate_lines(bad) == ["FAILED --mlgym-fail-under-aup: AUP@1 (best submission, tau_max 0.4) below 0.3: "
                               "baseline 0.178"]
    bad.stdout.fnmatch_lines(["*= mlgym gates =*", "FAILED --mlgym-fail-under-aup*", "*= 2 passed in *"])
    assert summary(bench)["gates"] == [{"gate": "--mlgym-fail-under-aup", "passed": False,
                                        "message": gate_lines(bad)[0].split(": ", 1)[1]}]


def test_fail_under_aup_gates_the_headline_best_submission_not_the_best_attempt(bench):
    oracle(bench, "echo 7 > answer.txt", "validate", "echo 1 > answer.txt", "submit")  # attempt 10, submission 4
    result = bench.runpytest("--agent=oracle", "-p", "no:cacheprovider", "--mlgym-fail-under-aup=0.39")
    result.assert_outcomes(failed=1)  # 4 does not beat the baseline 6
    assert result.ret == 1
    aup = summary(bench)["aup"]
    assert aup["best_submission"]["oracle"] < 0.39 <= aup["best_attempt"]["oracle"]  # infeasible earns some area
    assert gate_lines(result) == [f"FAILED --mlgym-fail-under-aup: AUP@1 (best submission, tau_max 0.4) below 0.39: "
                                  f"oracle {aup['best_submission']['oracle']:.3f}"]


def test_fail_under_aup_from_the_ini_file_and_an_agent_with_no_run_fails_it(bench):
    bench.makeini("[pytest]\nmlgym_fail_under_aup = 0.1\n")
    result = bench.runpytest("--agent=baseline", "-p", "no:cacheprovider")
    assert result.ret == 0 and gate_lines(result)[0].startswith("PASSED --mlgym-fail-under-aup")
    result = bench.runpytest("--agent=baseline", "-p", "no:cacheprovider", "--task-size=full", "-k", "nothing")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED and not gate_lines(result)  # not checked: exit 5 stands
    bench.makepyfile(test_skip="import pytest\ndef test_x(task, agent):\n    pytest.skip('no data')\n")
    result = bench.runpytest("test_skip.py", "--agent=baseline", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    assert result.ret == 1  # fail closed: nothing ran, so nothing proved the AUP
    assert gate_lines(result) == ["FAILED --mlgym-fail-under-aup: no run was recorded in this session, so no AUP "
                                  "to check against 0.1"]


@pytest.mark.parametrize("args, message", [
    (["--mlgym-fail-under-aup=abc"], "ERROR: --mlgym-fail-under-aup: expected a number >= 0, got 'abc'"),
    (["--mlgym-fail-under-aup=-1"], "ERROR: --mlgym-fail-under-aup: expected a number >= 0, got '-1'"),
    (["--mlgym-fail-under-aup=nan"], "ERROR: --mlgym-fail-under-aup: expected a number >= 0, got 'nan'"),
    (["--mlgym-compare=old.jsonl"], "ERROR: --mlgym-compare: */old.jsonl: no such file (give a results.jsonl or "
                                    "the report folder holding one)"),
    (["--mlgym-compare=empty.jsonl"], "ERROR: --mlgym-compare: */empty.jsonl holds no run records"),
    (["--mlgym-compare=stored.jsonl", "--mlgym-max-regression=x"],
     "ERROR: --mlgym-max-regression: expected a number >= 0, got 'x'"),
    (["--mlgym-max-regression=0.1"],
     "ERROR: --mlgym-max-regression: needs --mlgym-compare OLD.jsonl, the stored run to compare with"),
])
def test_bad_gate_values_are_one_line_usage_errors(bench, args, message):
    (bench.path / "empty.jsonl").write_text("")
    ResultsStore(bench.path / "stored.jsonl").append(rec())
    result = bench.runpytest(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert len([l for l in result.stderr.lines if l.strip()]) == 1
    assert not (bench.path / "reports" / "results.jsonl").exists()


# -- --mlgym-compare / --mlgym-max-regression ------------------------------------------------------
@pytest.fixture
def stored(bench):
    """A stored run: oracle scored 10 on tiny; it also ran a task and an agent this run lacks, and
    an older session in the same file that must not be used."""
    store = ResultsStore(bench.path / "old.jsonl")
    store.append(rec(session="older", sub=1.0))
    for r in (rec(), rec(agent="baseline", sub=6.0, policy="baseline"), rec(task="gone"), rec(agent="retired")):
        store.append(r)
    oracle(bench, "echo 9 > answer.txt", "submit")  # now 8: still beats the baseline, a worse submission
    return bench


def test_a_regression_within_the_allowed_drop_passes_with_a_per_task_diff(stored):
    result = stored.runpytest("--agent=oracle", "--agent=baseline", "--mlgym-compare=old.jsonl",
                              "--mlgym-max-regression=0.1", *XDIST)
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*= mlgym comparison with a stored run =*",
        "stored run: */old.jsonl (session stored1, 4 runs); compared on 1 common task, agents matched by name",
        "task  agent     stored  now  change          runs (stored/now)",
        "*",
        "tiny  baseline  6       6    same            1/1",
        "tiny  oracle    10      8    worse (-20.0%)  1/1",
        "",
        "AUP@1 on the common tasks (tau_max 0.4; *",
        "agent     best submission: stored  now    change  best attempt: stored  now    change",
        "*",
        "baseline  0.400                    0.400  +0.000  0.400                 0.400  +0.000",
        "oracle    0.400                    0.303  -0.097  0.400                 0.303  -0.097",
        "note: tasks in the stored run only, not compared: gone",
        "note: agents in the stored run only, not compared: retired",
        "*= mlgym gates =*",
    ])
    assert gate_lines(result) == [
        "PASSED --mlgym-max-regression: AUP (best submission, tau_max 0.4, 1 common task) against "
        f"{stored.path / 'old.jsonl'} dropped by at most 0.1: baseline 0.400 -> 0.400 (+0.000), "
        "oracle 0.400 -> 0.303 (-0.097)"]
    # the run's own table cannot see the drop: alone with the baseline, oracle is the best method either way
    assert summary(stored)["aup"]["best_submission"]["oracle"] == pytest.approx(0.4, abs=1e-3)
    comparison = summary(stored)["comparison"]
    assert comparison["stored_session"] == "stored1" and comparison["tasks"] == ["tiny"]
    assert comparison["aup"]["oracle"]["best_submission"]["change"] == pytest.approx(-0.097, abs=1e-3)


def test_a_regression_beyond_the_allowed_drop_fails_the_run(stored):
    result = stored.runpytest("--agent=oracle", "--agent=baseline", "--mlgym-compare", "old.jsonl",
                              "--mlgym-max-regression", "0.05", *XDIST)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert gate_lines(result) == [
        "FAILED --mlgym-max-regression: AUP (best submission, tau_max 0.4, 1 common task) against "
        f"{stored.path / 'old.jsonl'} dropped by more than 0.05: oracle 0.400 -> 0.303 (-0.097)"]
    result.stdout.fnmatch_lines(["tiny  oracle    10      8    worse (-20.0%)  1/1"])


def test_compare_with_the_own_results_file_uses_the_previous_session(bench):
    oracle(bench, "echo 7 > answer.txt", "submit")
    bench.runpytest("--agent=oracle", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    first = ResultsStore(bench.path / "reports" / "results.jsonl").read()[0].session
    oracle(bench, "echo 1 > answer.txt", "submit")  # now 4: no longer feasible (worse than the baseline)
    result = bench.runpytest("--agent=oracle", "--mlgym-compare=reports", "--mlgym-max-regression=0",
                             "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"stored run: */reports/results.jsonl (session {first}, 1 runs)*",
                                 "tiny  oracle  10      4    worse (-60.0%)  1/1"])
    (line,) = gate_lines(result)
    assert line.startswith("FAILED --mlgym-max-regression: ") and "dropped by more than 0: oracle 0.400 -> " in line


def test_compare_alone_reports_without_gating(stored):
    result = stored.runpytest("--agent=oracle", "--mlgym-compare=old.jsonl", "-p", "no:cacheprovider")
    assert result.ret == 0 and not gate_lines(result)
    result.stdout.fnmatch_lines(["tiny  oracle  10      8    worse (-20.0%)  1/1",
                                 "note: tasks in the stored run only, not compared: gone",
                                 "note: agents in the stored run only, not compared: baseline, retired"])


def test_comparison_restricts_seeds_and_reports_what_differs():
    old = [rec(seed=s, sub=10.0 - s) for s in range(3)] + [rec(task="t2", sub=5.0, baseline=4.0)]
    new = [rec(session="now", seed=s, sub=9.0) for s in (0, 1)] + [rec(session="now", task="t2", sub=5.0)]
    c = gates.compare(old, new)
    assert c["tasks"] == ["t2", "tiny"] and c["seeds"] == {"oracle": [0, 1]} and c["k"] == {"oracle": 2}
    row = next(r for r in c["rows"] if r["task"] == "tiny")
    assert (row["old"], row["new"], row["runs"]) == (10.0, 9.0, [2, 2])  # seed 2 of the stored run is left out
    assert "agent oracle: seeds 0,1,2 in the stored run, 0,1 here: compared on 0,1" in c["notes"]
    assert "task t2: recorded baseline 4 in the stored run, 6 here (both runs are scored against 6)" in c["notes"]
    gate = gates.max_regression(c, 0.0, "old.jsonl")
    assert not gate.passed and gate.line.startswith("FAILED --mlgym-max-regression: ")
    apart = gates.compare(old, [rec(task="other")])
    assert not gates.max_regression(apart, 1.0, "x").passed  # nothing in common: fails
    c = {"stored": "x", "stored_session": "s", "stored_runs": 4, **apart}
    assert terminal.comparison_lines(c) == [
        "stored run: x (session s, 4 runs); compared on 0 common tasks, agents matched by name",
        "note: tasks in the stored run only, not compared: t2, tiny", "note: tasks in this run only, not compared: other"]


# -- JUnit XML ------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", [None, "xunit1"])
def test_junit_xml_has_per_test_properties_and_the_suite_aup_under_xdist(bench, family):
    if family:
        bench.makeini(f"[pytest]\njunit_family = {family}\n")
    oracle(bench, "echo 9 > answer.txt", "validate", "echo 7 > answer.txt", "submit")
    junit = bench.path / "junit.xml"
    result = bench.runpytest("--agent=oracle", "--agent=baseline", f"--junitxml={junit}",
                             "--mlgym-fail-under-aup=0.1", *XDIST)
    result.assert_outcomes(passed=2)
    assert "junit_family" not in result.stdout.str()  # no incompatibility warning with the default (xunit2)
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")} for c in suite.iter("testcase")}
    props = cases["test_agent_beats_baseline[tiny-oracle-s0]"]
    assert {k: props[k] for k in ("task", "agent", "seed", "metric", "direction", "baseline", "best_attempt",
                                  "best_submission", "status", "passed", "steps", "cost_usd", "tokens")} == {
        "task": "tiny", "agent": "oracle", "seed": "0", "metric": "score", "direction": "max", "baseline": "6.0",
        "best_attempt": "10.0", "best_submission": "10.0", "status": "submitted", "passed": "True", "steps": "4",
        "cost_usd": "0.0", "tokens": "0"}
    assert cases["test_agent_beats_baseline[tiny-baseline-s0]"]["best_submission"] == "6.0"
    glob = {p.get("name"): p.get("value") for p in suite.find("properties")}
    aup = summary(bench)["aup"]
    assert glob["aup.k"] == "1" and glob["aup.tau_max"] == "0.4"
    for kind in ("best_attempt", "best_submission"):
        for method in ("oracle", "baseline", "(recorded baseline)"):
            assert float(glob[f"aup.{kind}.{method}"]) == pytest.approx(aup[kind][method], abs=1e-6)
    assert glob["aup.best_submission.oracle"] == "0.400000"
    assert glob["gate.fail_under_aup"].startswith("PASSED --mlgym-fail-under-aup: ")
    assert glob["mlgym.session"] == summary(bench)["sessions"][0]
