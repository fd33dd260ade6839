"""A sandbox a third party defines in a plugin of its own, registered through the
``pytest_mlgym_sandboxes`` hook: it passes the shipped contract suite with one import, and an
episode of the tiny task runs in it with its preflight check, its cleanup and the evaluation
working, with no change to the engine."""
from __future__ import annotations

import json

import pytest

# The plugin: a sandbox of its own (here, by composition over a local shell it opens through the
# public API), with its own lifecycle, which logs every call the engine makes to it.
PLUGIN = '''
from pathlib import Path

import pytest

from pytest_mlgym.sandbox import IsolationPlan, Sandbox, SandboxError, create

LOG = Path(__file__).with_name("calls.log")


def log(what):
    with open(LOG, "a") as f:
        f.write(what + "\\n")


class Wrapped(Sandbox):
    def __init__(self, workdir, config):
        self.inner = create("local", workdir, config)
        self.workdir = self.inner.workdir
        self.isolation = "wrapped"
        log("open")

    @classmethod
    def check(cls, config):
        log("check")
        if (LOG.parent / "refuse").exists():
            raise SandboxError("the wrapped engine is switched off")

    @classmethod
    def cleanup(cls, session, config):
        log(f"cleanup {session}")
        return 0

    @classmethod
    def isolation_plan(cls):
        return IsolationPlan("wrapped")

    def exec(self, cmd, timeout):
        return self.inner.exec(cmd, timeout)

    def read_file(self, path, max_bytes=None):
        return self.inner.read_file(path, max_bytes)

    def write_file(self, path, data):
        self.inner.write_file(path, data)

    def copy_in(self, src, dest):
        self.inner.copy_in(src, dest)

    def copy_out(self, src, dest, **kw):
        log("copy_out")
        self.inner.copy_out(src, dest, **kw)

    def close(self):
        self.inner.close()


@pytest.hookimpl
def pytest_mlgym_sandboxes(config):
    return {"wrapped": Wrapped}
'''

CONTRACT = '''
from pytest_mlgym.testing.sandbox_contract import SandboxContract


class TestWrapped(SandboxContract):
    backend = "wrapped"
'''


@pytest.fixture
def project(bench):
    bench.makepyfile(mlgym_wrapped=PLUGIN)
    bench.syspathinsert()
    return bench


def test_a_third_party_sandbox_passes_the_shipped_contract_suite(project):
    project.makepyfile(test_contract=CONTRACT)
    # registered by the plugin's hook, as any run registers it
    result = project.runpytest_subprocess("test_contract.py", "-p", "mlgym_wrapped", "-p", "no:cacheprovider",
                                          "--sandbox=wrapped")
    result.assert_outcomes(passed=10)


def test_an_episode_runs_in_a_third_party_sandbox_with_check_cleanup_and_evaluation(project):
    result = project.runpytest_subprocess("tasks", "-p", "mlgym_wrapped", "--sandbox=wrapped", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)  # the baseline agent reproduces the tiny task's baseline
    [rec] = [json.loads(line) for line in (project.path / "reports" / "results.jsonl").read_text().splitlines()]
    assert rec["sandbox"] == "wrapped" and rec["isolation"] == "wrapped" and rec["best_submission"] == 6.0
    calls = (project.path / "calls.log").read_text().split("\n")
    assert calls[0] == "check" and "open" in calls and "copy_out" in calls  # checked first; scored from it
    assert f"cleanup {rec['session']}" in calls[calls.index("copy_out"):]  # cleaned up at the end


def test_a_third_party_sandbox_that_cannot_run_stops_the_session_in_one_line(project):
    (project.path / "refuse").write_text("")
    result = project.runpytest_subprocess("tasks", "-p", "mlgym_wrapped", "--sandbox=wrapped", "-p", "no:cacheprovider")
    assert result.ret == 4
    [line] = [line for line in result.errlines if line.strip()]
    assert line == "ERROR: --sandbox wrapped: the wrapped engine is switched off"
