"""Infrastructure failures (status ``infra_error``: the model provider's rate limits, 5xx, time-outs after
litellm's retries) are not the agent's: the test is an error, the record is kept, the reports show them
apart, AUP leaves them out with a visible count, and ``--mlgym-resume`` runs them again. Every fault comes
from the ``mlgym-scripted`` litellm provider (a ``litellm.CustomLLM``), through litellm's real call path."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import yaml

from test_llm import SOLVE

# a validate that beats the baseline (7 scores 10 > 6), then the provider fails past its retries
BEATS_THEN_FAILS = [*SOLVE[:4], *[{"error": "rate_limit"}] * 3]


def agent_file(bench, name: str, replies: list, retries: int = 0) -> str:
    agents = bench.path / "agents"
    agents.mkdir(exist_ok=True)
    (agents / f"{name}.yaml").write_text(yaml.safe_dump({"replies": replies}))
    (agents / f"{name}-agent.yaml").write_text(
        f"policy: llm\nmodel: mlgym-scripted/{name}.yaml\ntool_calling: true\nnum_retries: {retries}\n")
    return f"--agent={name}-agent"


def records(bench) -> list[dict]:
    return [json.loads(line) for line in (bench.path / "reports" / "results.jsonl").read_text().splitlines()]


def test_an_infra_failure_after_a_winning_validate_is_an_error_and_its_record_is_kept(bench, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # the short summary's line whole
    flaky = agent_file(bench, "flaky", BEATS_THEN_FAILS)
    # a user's own test that asserts what the validate showed: it would pass, but the run is not a result
    (bench.path / "tasks" / "test_user.py").write_text(
        "def test_best_attempt_beats_the_baseline(task, agent):\n"
        "    run = task.run(agent)\n"
        "    assert run.best_attempt > run.baseline\n")
    result = bench.runpytest_subprocess("tasks", flaky, "-n", "2", "-p", "no:cacheprovider", "--junitxml=reports/junit.xml",
                                        "-rA")  # under xdist: the controller reports what the workers ran
    result.assert_outcomes(errors=2)  # neither passed nor failed
    assert result.ret == 1
    result.stdout.fnmatch_lines(["EE *[[]100%[]]"])  # E, not F or .
    for test in ("test_bench.py::test_agent_beats_baseline", "test_user.py::test_best_attempt_beats_the_baseline"):
        result.stdout.fnmatch_lines([f"ERROR tasks/{test}[[]tiny-flaky-agent-s0[]] - infrastructure failure "
                                     "(RateLimitError): tiny/flaky-agent/s0: *rate limit*"])
    runs = records(bench)
    assert len(runs) == 2  # nothing recorded is lost
    for rec in runs:
        assert rec["status"] == "infra_error" and rec["infra"] == "RateLimitError" and not rec["passed"]
        assert rec["best_attempt"] == 10.0  # what the validate scored is kept
    cases = list(ET.parse(bench.path / "reports" / "junit.xml").iter("testcase"))
    assert len(cases) == 2
    for case in cases:
        assert case.find("failure") is None
        error = case.find("error")
        assert error is not None and "infrastructure failure (RateLimitError)" in (error.get("message") or "")


def test_infra_failures_are_shown_apart_and_left_out_of_aup_with_a_visible_count(bench, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    flaky, solver = agent_file(bench, "flaky", BEATS_THEN_FAILS), agent_file(bench, "solver", SOLVE)
    args = ["tasks", flaky, solver, "--seeds=2", "-p", "no:cacheprovider", "--junitxml=reports/junit.xml"]
    result = bench.runpytest_subprocess(*args, "--mlgym-fail-under-aup=0.1")
    result.assert_outcomes(passed=2, errors=2)
    # the terminal table: a column of infra failures by class, and the count left out of AUP
    result.stdout.fnmatch_lines(["*status*infra failures*",
                                 "tiny*flaky-agent*-*-*0/2*infra_error*2 (RateLimitError x2)*",
                                 "tiny*solver-agent*10*10*2/2*submitted*-*"])
    result.stdout.fnmatch_lines(["note: 2 runs left out of AUP: infrastructure failures (flaky-agent: 2 "
                                 "RateLimitError); no AUP for flaky-agent (no counted run on tiny)*"])
    # the gate says what it left out, and cannot pass on a number that has no counted run; the other
    # agent is scored over every task, its AUP untouched by the provider's failure
    result.stdout.fnmatch_lines(["FAILED --mlgym-fail-under-aup: *flaky-agent no run counted (every run failed for "
                                 "infrastructure) (2 runs left out of AUP: infrastructure failures*"])
    s = json.loads((bench.path / "reports" / "summary.json").read_text())
    row = s["tasks"]["tiny"]["agents"]["flaky-agent"]
    assert (row["runs"], row["infra_errors"], row["infra"]) == (2, 2, {"RateLimitError": 2})
    assert s["tasks"]["tiny"]["agents"]["solver-agent"]["infra_errors"] == 0
    assert s["infra"]["runs"] == 2 and s["infra"]["agents"] == {"flaky-agent": {"RateLimitError": 2}}
    assert s["infra"]["unscored"] == {"flaky-agent": ["tiny"]}
    assert s["aup"]["best_submission"]["solver-agent"] > s["aup"]["best_submission"]["(recorded baseline)"]
    assert "left out of AUP" in s["infra"]["rule"]
    assert "flaky-agent" not in s["aup"]["best_attempt"]  # its validate's 10 is not scored as the agent's
    page = (bench.path / "reports" / "report.html").read_text()
    assert "infra_error x2 <span class=infra>[infra failures: 2 (RateLimitError x2)]</span>" in page and "2 runs left out of AUP: infrastructure failures" in page
    props = {p.get("name"): p.get("value") for p in ET.parse(bench.path / "reports" / "junit.xml").iter("property")}
    assert props["infra.runs"] == "2" and props["infra.flaky-agent"] == "RateLimitError=2"
    assert props["aup.unscored.flaky-agent"] == "tiny"

    again = bench.runpytest_subprocess(*args, "--mlgym-compare=reports/results.jsonl", "--mlgym-max-regression=0.5")
    again.stdout.fnmatch_lines(["*--mlgym-max-regression: AUP * against */reports/results.jsonl (left out: runs that "
                                "failed for infrastructure, 2 stored, 2 here)*"])


def _record(agent: str, seed: int, task: str, sub: float, status: str = "submitted", infra: str | None = None):
    from pytest_mlgym.results import RunRecord
    return RunRecord(session="s", task=task, size="lite", agent=agent, policy="llm", seed=seed, metric="score",
                     direction="max", baseline=6.0, tolerance=0.0, status=status, infra=infra, best_attempt=sub,
                     best_submission=sub, oracle_best_attempt=sub, finished_at=float(seed))


def test_the_aup_rule_drops_infra_runs_from_k_and_an_agent_left_with_no_counted_run_on_a_task():
    # the same records as real runs write them (test above): on t1 flaky's seed 1 failed for infrastructure
    # after scoring 10; on t2 every flaky run did, so flaky gets no AUP, and good is scored on both tasks
    from pytest_mlgym.report import summary
    from pytest_mlgym.scoring import aup

    records = [_record("flaky", 0, "t1", 7.0), _record("flaky", 1, "t1", 10.0, "infra_error", "RateLimitError"),
               _record("flaky", 0, "t2", 10.0, "infra_error", "Timeout"), _record("good", 0, "t1", 8.0),
               _record("good", 1, "t1", 8.0), _record("good", 0, "t2", 9.0)]
    s = summary.build(records)
    assert s.infra.unscored == {"flaky": ["t2"]}
    assert s.infra.agents == {"flaky": {"RateLimitError": 1, "Timeout": 1}} and s.infra.runs == 2
    row = s.tasks["t1"].agents["flaky"]
    assert (row.runs, row.infra_errors, row.best_submission) == (2, 1, 7.0)  # the 10 is not the agent's
    assert s.k == 2  # good's two counted runs; flaky has one on t1
    expected = aup({"t1": {"good": 8.0}, "t2": {"good": 9.0}}, {"t1": "max", "t2": "max"}, {"t1": 6.0, "t2": 6.0},
                   tau_max=s.tau_max, baseline_name=summary.RECORDED)
    assert s.aup["best_submission"] == expected and "flaky" not in expected
    assert "no AUP for flaky (no counted run on t2)" in s.infra.note()


def test_resume_runs_again_the_infra_failures_and_only_them_and_reports_the_new_record(bench):
    flaky, solver = agent_file(bench, "flaky", BEATS_THEN_FAILS), agent_file(bench, "solver", SOLVE)
    args = ["tasks", flaky, solver, "--seeds=2", "-p", "no:cacheprovider"]
    first = bench.runpytest_subprocess(*args)
    first.assert_outcomes(passed=2, errors=2)
    (bench.path / "agents" / "flaky.yaml").write_text(yaml.safe_dump({"replies": SOLVE}))  # the provider is back

    resumed = bench.runpytest_subprocess(*args, "--mlgym-resume")
    resumed.assert_outcomes(passed=4)
    session = records(bench)[0]["session"]
    resumed.stdout.fnmatch_lines([f"*resuming session {session}: 2 runs already finished, 2 that failed for "
                                  "infrastructure run again*"])
    runs = records(bench)
    assert [r["agent"] for r in runs].count("solver-agent") == 2  # finished runs are not run again
    flaky_runs = [(r["seed"], r["status"]) for r in runs if r["agent"] == "flaky-agent"]
    assert sorted(flaky_runs) == [(0, "infra_error"), (0, "submitted"), (1, "infra_error"), (1, "submitted")]
    assert {r["session"] for r in runs} == {session}
    s = json.loads((bench.path / "reports" / "summary.json").read_text())
    row = s["tasks"]["tiny"]["agents"]["flaky-agent"]
    assert (row["runs"], row["infra_errors"], row["statuses"]) == (2, 0, ["submitted", "submitted"])
    assert s["infra"]["runs"] == 0 and s["aup"]["best_submission"]["flaky-agent"] > 0

    again = bench.runpytest_subprocess(*args, "--mlgym-resume")  # all finished now: nothing runs
    again.assert_outcomes(passed=4)
    assert len(records(bench)) == 6
