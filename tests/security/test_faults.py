"""Faults (issue 6): a model API that fails in every way, an xdist worker killed mid-episode, Ctrl-C
of the whole run. Each run ends with one record or is left unrecorded for ``--mlgym-resume``:
none lost, none doubled, no torn line, nothing left running, and the session still reports.

Every test runs the real command line (``pytest -n 2``) in a pytester project with the tiny task.
The blocking episodes run ``sleep 1000.<random digits>``, so their processes can be found in /proc
by that token, and nothing else has it.

Wall-clock bounds here only catch hangs: on a loaded CI machine (load 5-8 on 2 cores) these runs
take 5-10x as long as on an idle one. How fast Ctrl-C stops a run is measured by bench/ctrl_c.py.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pytest_mlgym.sandbox import SandboxError, cgroup
from redteam import gone, procs_with  # the host's processes with a token in their command line

HANG_S = 300.0  # what takes seconds on an idle machine (a session starting its runs, finishing the others)
GONE_S = 60.0  # for the processes of a killed run to be gone

SOLVE = [  # a scripted model that solves the tiny task (target 7: score 10) in five calls
    {"tool": "open", "args": {"path": "answer.txt"}, "text": "Let me read the current answer."},
    {"tool": "edit", "args": {"start": 1, "end": 1, "text": "7\n"}},
    {"tool": "bash", "args": {"command": "cat answer.txt"}},
    {"tool": "validate"},
    {"tool": "submit"},
]
# the llm agent waits between retries what litellm's retry arithmetic says (exponential backoff,
# 0.5 s, 1 s, ...; agents/calls.py): kept, 100 times shorter
FAST_BACKOFF = """
from pytest_mlgym.agents.scripted import litellm

_wait = litellm.utils._calculate_retry_after
litellm.utils._calculate_retry_after = lambda *args, **kwargs: _wait(*args, **kwargs) / 100
"""
# trusted test code in the inner run: says which worker runs each episode that blocks
PID_FILE = """
import os
from pathlib import Path


def pytest_runtest_setup(item):
    if "-slow" in item.nodeid:
        Path(item.config.rootpath, f"{item.callspec.id}.pid").write_text(str(os.getpid()))
"""


# -- helpers ----------------------------------------------------------------------------------------
def token() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(12))


def kill_leftovers(tok: str) -> None:
    for pid in procs_with(tok):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def records(project: Path) -> list[dict]:
    """Every line of results.jsonl, each of which must be one whole record."""
    path = project / "reports" / "results.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]  # a torn line fails here


def finished(project: Path) -> int:
    """How many whole lines results.jsonl has (a worker may be writing one)."""
    path = project / "reports" / "results.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def replay_agent(project: Path, name: str, *actions: str) -> None:
    agents = project / "agents"
    agents.mkdir(exist_ok=True)
    (agents / f"{name}.jsonl").write_text("".join(json.dumps({"action": a}) + "\n" for a in actions))
    (agents / f"{name}.yaml").write_text(f"policy: replay\ntrajectory: {name}.jsonl\n")


def start(project: Path, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, Path]:
    """``pytest`` in its own process group (as a terminal starts it), its output to a file."""
    out = project / "pytest-output.txt"
    with open(out, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=project, start_new_session=True,
                                stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    return proc, out


def wait_for(condition, what: str, out: Path, within: float = HANG_S) -> None:
    end = time.monotonic() + within
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}; the run's output:\n" + out.read_text()[-3000:]
        time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def mode_works(mode: str) -> bool:
    argv = {"bwrap": ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                      "--die-with-parent", "true"],
            "unshare": ["unshare", "-n", "true"], "none": ["true"]}[mode]
    return shutil.which(argv[0]) is not None and subprocess.run(argv, capture_output=True).returncode == 0


# -- 1. the model API fails in every way -------------------------------------------------------------
FAULTS = {  # agent -> (the model's replies, agent settings, status, how the reason starts)
    "rate-limited": ([{"error": "rate_limit"}, *SOLVE], {}, "submitted", ""),
    "server-errors": ([{"error": "server_error"}, {"error": "server_error"}, *SOLVE], {}, "submitted", ""),
    "timeouts": ([{"error": "timeout"}, {"error": "timeout"}, *SOLVE], {}, "submitted", ""),
    "truncated": ([{"text": "```\necho 7 > answ", "finish": "length"}, *SOLVE], {"tool_calling": False},
                  "submitted", ""),
    # the provider's failures: infra_error (a pytest error, never the agent's fail), the error class first
    "rate-limit-storm": ([{"error": "rate_limit"}] * 10, {"num_retries": 2}, "infra_error", "RateLimitError: "),
    "server-down": ([SOLVE[0], *[{"error": "server_error"}] * 10], {"num_retries": 2}, "infra_error",
                    "InternalServerError: "),
    "bad-key": ([{"error": "auth"}] * 10, {}, "infra_error", "AuthenticationError: "),  # not retried: HTTP 401
    "garbage": ([{"text": "\x00\ufffd}{ ]] lorem"}, {"tool": "no_such_tool", "args": {"x": [1]}}, *SOLVE], {},
                "error", "unparseable reply after a corrective re-prompt: unknown tool 'no_such_tool'"),
}


def test_model_api_faults_end_every_run_with_one_record_and_the_session_reports(bench):
    """Eight scripted models at once, through litellm's real provider path: the retried faults
    still solve the task; a provider that keeps failing ends its run as ``infra_error`` (a pytest
    error), garbage as ``error`` (a fail), each with a one-line reason. Every run has exactly one
    record, and the session reports all of them."""
    (bench.path / "conftest.py").write_text(FAST_BACKOFF)
    agents = bench.path / "agents"
    agents.mkdir()
    for name, (replies, settings, _, _) in FAULTS.items():
        (agents / f"{name}.script.yaml").write_text(yaml.safe_dump({"replies": replies}))
        (agents / f"{name}.yaml").write_text(yaml.safe_dump({
            "policy": "llm", "model": f"mlgym-scripted/{name}.script.yaml", "tool_calling": True, "num_retries": 3,
            "input_cost_per_token": 1e-6, **settings}))
    result = bench.runpytest_subprocess("tasks", *(f"--agent={n}" for n in FAULTS), "-n", "2",
                                        "-p", "no:cacheprovider")

    passing = [n for n, f in FAULTS.items() if f[2] == "submitted"]
    infra = [n for n, f in FAULTS.items() if f[2] == "infra_error"]
    result.assert_outcomes(passed=len(passing), errors=len(infra), failed=len(FAULTS) - len(passing) - len(infra))
    assert result.ret == pytest.ExitCode.TESTS_FAILED and "INTERNALERROR" not in result.stdout.str()
    runs = records(bench.path)
    assert sorted(r["agent"] for r in runs) == sorted(FAULTS)  # one record per run: none lost, none doubled
    for r in runs:
        replies, _, status, reason = FAULTS[r["agent"]]
        assert (r["status"], r["reason"][:len(reason)]) == (status, reason), r
        assert "\n" not in r["reason"]
        if status == "submitted":  # each fault was retried or re-prompted, then the model went on
            assert r["best_submission"] == 10.0 and r["passed"]
            assert len(r["usage"]) == sum("error" not in reply for reply in replies)  # every answered call
            assert r["cost_usd"] > 0
        else:  # what the workspace held was still scored
            assert r["best_submission"] == 6.0 and not r["passed"]
            assert r["infra"] == (reason.split(":")[0] if status == "infra_error" else None)
    summary = json.loads((bench.path / "reports" / "summary.json").read_text())
    assert set(summary["tasks"]["tiny"]["agents"]) == set(FAULTS) and "interrupted" not in summary
    result.stdout.fnmatch_lines(["*mlgym results*", *(f"tiny*{n} *" for n in sorted(FAULTS)), "AUP@1*"])
    result.stdout.fnmatch_lines(["FAILED *[[]tiny-garbage-s0[]]*"])
    result.stdout.fnmatch_lines(["infrastructure failure (AuthenticationError): tiny/bad-key/s0: *"])
    result.stdout.fnmatch_lines(["ERROR *[[]tiny-bad-key-s0[]]*"])


# -- 2. kill -9 of a worker mid-episode --------------------------------------------------------------
@pytest.mark.parametrize("mode", ["bwrap", "unshare", "none"])
@pytest.mark.parametrize("when", ["first", "last"])
def test_a_worker_killed_mid_episode_loses_only_its_run_and_leaves_nothing_running(bench, when, mode, request):
    """One episode blocks in a long step and its xdist worker is SIGKILLed: ``first``, while other
    runs wait (the replacement worker runs them), or ``last``, once every other run has finished (no
    sandbox starts after it). The other runs have one whole record each, the killed test is reported
    as crashed, the summary is written from the others, and nothing of the killed worker's sandbox
    is left running (bubblewrap's PID namespace dies with the worker; without one, the controller
    removes the control groups of dead processes at the end of the session)."""
    if not mode_works(mode):
        pytest.skip(f"isolation mode {mode} does not work on this host")
    if mode != "bwrap" and not cgroup.available():
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            f"with isolation {mode} and no control groups (not root), a local shell outlives its killed worker "
            f"(sandbox/local.py would need a supervisor that dies with the worker)")))
    tok = token()
    (bench.path / "conftest.py").write_text(PID_FILE)
    replay_agent(bench.path, "slow", f"sleep 1000.{tok}", "echo 7 > answer.txt")
    ok = {f"ok{n}": n for n in (7, 8, 9, 5)}
    for name, n in ok.items():
        replay_agent(bench.path, name, f"echo {n} > answer.txt")
    agents = ["slow", *ok] if when == "first" else [*ok, "slow"]
    proc, out = start(bench.path, "tasks", *(f"--agent={a}" for a in agents), "-n", "2", "-p", "no:cacheprovider",
                      env={"MLGYM_ISOLATION": mode})
    try:
        pid_file, before = bench.path / "tiny-slow-s0.pid", 0 if when == "first" else len(ok)
        wait_for(lambda: pid_file.exists() and procs_with(tok) and finished(bench.path) >= before,
                 "the slow episode's step", out)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        proc.wait(timeout=HANG_S)
        text = out.read_text(errors="replace")
        left = gone(tok, within=GONE_S)
    finally:
        stop(proc)
        kill_leftovers(tok)

    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, text[-3000:]
    assert re.search(r"worker 'gw\d+' crashed while running '.*\[tiny-slow-s0\]'", text), text[-3000:]
    assert re.search(r"1 failed, 4 passed", text), text[-3000:]
    runs = records(bench.path)
    assert sorted(r["agent"] for r in runs) == sorted(ok)  # the others: none lost, none doubled
    assert all(r["status"] == "submitted" and r["isolation"] == mode for r in runs)
    summary = json.loads((bench.path / "reports" / "summary.json").read_text())
    assert set(summary["tasks"]["tiny"]["agents"]) == set(ok)
    assert "mlgym results" in text and "AUP@1" in text and all(f" {n} " in text for n in ok)
    assert not left, f"the killed worker's sandbox is still running: {left}"


# -- 3. Ctrl-C of the whole run ----------------------------------------------------------------------
@pytest.mark.parametrize("sandbox, mode", [
    pytest.param("local", None, id="local"),
    pytest.param("local", "none", id="local-none"),
    pytest.param("docker", None, id="docker", marks=pytest.mark.docker),
])
def test_ctrl_c_writes_a_partial_report_and_resume_runs_only_the_rest(bench, sandbox, mode):
    """SIGINT to the run's process group while two episodes are mid-step: pytest exits at once with
    code 2; the finished runs are in results.jsonl, summary.json and the terminal table; the
    interrupted ones are not recorded (the terminal says so), nothing is left running, and
    ``--mlgym-resume`` runs only those, so every run ends with exactly one record. The blocked
    steps' timeout is longer than any bound here, so a Ctrl-C that only took effect once the step
    timed out is caught as a hang; how fast it stops is bench/ctrl_c.py's figure, not a check."""
    if sandbox == "docker":
        from pytest_mlgym.sandbox import docker
        try:
            docker.check()
        except SandboxError as e:
            pytest.skip(f"no Docker Engine here: {e} (bash docker/start-engine starts one)")
        if any(docker.is_remote(url) for url in docker.hosts()):
            pytest.skip("the Docker Engine is remote: its containers' processes cannot be seen from here")
    tok = token()
    task_yaml = bench.path / "tasks" / "tiny" / "task.yaml"
    spec = yaml.safe_load(task_yaml.read_text())
    spec["limits"].update(step_s=2 * HANG_S, episode_s=4 * HANG_S)  # the blocked step outlasts every bound
    task_yaml.write_text(yaml.safe_dump(spec))
    for name in ("ok1", "slow1", "ok2", "slow2"):  # two per worker: each finishes one run, then blocks
        if name.startswith("ok"):
            replay_agent(bench.path, name, "echo 7 > answer.txt")
        else:
            replay_agent(bench.path, name, f"sleep 1000.{tok}{name[-1]}", "echo 8 > answer.txt")
    args = ["tasks", "--agent=ok1", "--agent=slow1", "--agent=ok2", "--agent=slow2", f"--sandbox={sandbox}",
            "-n", "2", "-p", "no:cacheprovider"]
    env = {"MLGYM_ISOLATION": mode} if mode else {}
    proc, out = start(bench.path, *args, env=env)
    try:
        wait_for(lambda: finished(bench.path) == 2 and procs_with(tok), "two finished runs and a blocked one", out)
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        try:
            proc.wait(timeout=HANG_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Ctrl-C did not stop the run within {HANG_S:g} s; its output:\n{out.read_text()[-3000:]}")
        text = out.read_text(errors="replace")
        left = gone(tok, within=GONE_S)
    finally:
        stop(proc)
        kill_leftovers(tok)

    assert proc.returncode == pytest.ExitCode.INTERRUPTED and "KeyboardInterrupt" in text, text[-3000:]
    assert not left, f"processes left running after Ctrl-C: {left}"
    runs = records(bench.path)
    assert sorted(r["agent"] for r in runs) == ["ok1", "ok2"]  # the interrupted runs are not recorded
    session = runs[0]["session"]
    summary = json.loads((bench.path / "reports" / "summary.json").read_text())
    assert set(summary["tasks"]["tiny"]["agents"]) == {"ok1", "ok2"} and summary["sessions"] == [session]
    assert summary["interrupted"]["finished"] == 2
    assert summary["interrupted"]["interrupted"] + summary["interrupted"]["not_started"] == 2
    assert re.search(r"mlgym results.*\ntiny +ok1 .*\ntiny +ok2 .*AUP@1", text, re.S), text[-3000:]
    assert re.search(r"=+ mlgym: interrupted =+\n2 runs finished and recorded; \d runs? interrupted"
                     r"( and \d not started)?, not recorded: the same command with --mlgym-resume runs them\n",
                     text), text[-3000:]
    if sandbox == "docker":
        from pytest_mlgym.sandbox import docker
        assert docker._client().containers.list(all=True, filters={"label": f"{docker.LABEL}={session}"}) == []

    for name in ("slow1", "slow2"):  # the rerun must not block again
        replay_agent(bench.path, name, "echo 8 > answer.txt")
    resumed = bench.runpytest_subprocess(*args, "--mlgym-resume")
    resumed.assert_outcomes(passed=4)
    resumed.stdout.fnmatch_lines([f"*resuming session {session}: 2 runs already finished*"])
    after = records(bench.path)
    assert after[:2] == runs  # kept as they were
    keys = [(r["task"], r["agent"], r["seed"]) for r in after]
    assert sorted(keys) == sorted(("tiny", a, 0) for a in ("ok1", "ok2", "slow1", "slow2"))  # each exactly once
    assert {r["session"] for r in after} == {session}
    summary = json.loads((bench.path / "reports" / "summary.json").read_text())
    assert set(summary["tasks"]["tiny"]["agents"]) == {"ok1", "ok2", "slow1", "slow2"} and "interrupted" not in summary
