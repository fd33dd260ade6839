"""``--mlgym-resume``: after a kill -9, finished runs are kept and not redone; the rest run once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from pytest_mlgym.results import ResultsStore


def test_kill_9_then_resume_loses_and_duplicates_nothing(bench, tmp_path):
    slow = tmp_path / "slow.jsonl"
    slow.write_text('{"action": "sleep 1.5"}\n{"action": "echo 8 > answer.txt"}\n')
    args = ["tasks", f"--agent=replay:{slow}", "--seeds=6", "-n", "2", "-p", "no:cacheprovider"]
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=bench.path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = bench.path / "reports" / "results.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (not results.exists() or len(results.read_text().splitlines()) < 2):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run, workers included, mid-way
    proc.wait()
    before = ResultsStore(results).read()
    assert 2 <= len(before) < 6, "the run was not interrupted mid-way"

    resumed = bench.runpytest_subprocess(*args, "--mlgym-resume")
    resumed.assert_outcomes(passed=6)
    resumed.stdout.fnmatch_lines([f"*resuming session {before[0].session}: {len(before)} runs already finished*"])
    after = ResultsStore(results).read()
    keys = [(r.task, r.agent, r.seed) for r in after]
    assert sorted(k[2] for k in keys) == list(range(6)) and len(keys) == len(set(keys))  # none lost or doubled
    assert {r.session for r in after} == {before[0].session}
    assert [r.model_dump() for r in after[:len(before)]] == [r.model_dump() for r in before]  # kept as they were

    again = bench.runpytest_subprocess(*args, "--mlgym-resume")  # a finished session: nothing runs again
    again.assert_outcomes(passed=6)
    assert len(ResultsStore(results).read()) == 6


def test_resume_with_nothing_recorded_is_a_one_line_usage_error(bench):
    result = bench.runpytest_subprocess("tasks", "--mlgym-resume", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --mlgym-resume: nothing to resume: */reports/results.jsonl has no runs"])
