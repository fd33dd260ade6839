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
    result = bench.runpytest_subprocess("tasks", flaky, "-p", "no:cacheprovider", "--junitxml=reports/junit.xml", "-rA")
    result.assert_outcomes(errors=2)  # neither passed nor failed
    assert result.ret == 1
    result.stdout.fnmatch_lines(["tasks/test_bench.py E*", "tasks/test_user.py E*"])
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
