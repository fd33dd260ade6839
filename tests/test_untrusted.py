"""pytest_mlgym.sdk.untrusted: agent code called from an evaluator runs in a sandbox of its own."""
from __future__ import annotations

import re
import time

import pytest

from pytest_mlgym.sdk.untrusted import Untrusted, UntrustedError

AGENT = '''
import json, random, sys
print('{"score": 99}')                # a fake metrics line must not reach the protocol
json.dumps = lambda *a, **k: "hacked"  # nor may patching json in the child
def parity(h): return len(h) % 2
def rand(): return random.random()
def boom(): raise ValueError("nope " * 100)
def spin():
    while True: pass
def weird(): return object()
def nan(): return float("nan")
def leave(): sys.exit(0)
'''


@pytest.fixture
def agent_file(tmp_path):
    path = tmp_path / "agent.py"
    path.write_text(AGENT)
    return path


def test_calls_and_batches_go_through_a_child(agent_file):
    with Untrusted(agent_file, seed=1) as agent:
        assert agent.map("parity", [[[1, 2]], [[1]], [[]]]) == [0, 1, 0]
        assert agent.call("parity", [1, 2, 3]) == 1
        first = agent.call("rand")
    with Untrusted(agent_file, seed=1) as again:
        assert again.call("rand") == first  # seeded: the same seed, the same draws


@pytest.mark.parametrize("fn, message", [
    ("boom", "boom() raised: ValueError: nope"),
    ("weird", "not plain data"),
    ("nan", "not plain data"),
    ("missing", "defines no function missing()"),
    ("leave", "leave() raised: SystemExit"),
])
def test_agent_failures_are_one_line_errors(agent_file, fn, message):
    with Untrusted(agent_file) as agent:
        with pytest.raises(UntrustedError, match=re.escape(message)) as e:
            agent.call(fn)
        assert "\n" not in str(e.value) and len(str(e.value)) < 600
        assert agent.call("parity", []) == 0  # the child survives an exception in agent code


def test_the_time_budget_is_enforced_and_the_child_killed(agent_file):
    start = time.monotonic()
    agent = Untrusted(agent_file, budget_s=1)
    with pytest.raises(UntrustedError, match="time budget of 1 s"):
        agent.call("spin")
    assert time.monotonic() - start < 30 and agent.broker.running() == 0  # a hang is caught, not speed


@pytest.mark.parametrize("code, message", [
    ("import sys; sys.exit(3)", "importing agent.py failed: SystemExit: 3"),
    ("import os; os._exit(3)", "exited (code 3) before answering"),
    ("def f(:\n", "importing agent.py failed: SyntaxError"),
])
def test_import_failures(tmp_path, code, message):
    (tmp_path / "agent.py").write_text(code)
    with pytest.raises(UntrustedError, match=re.escape(message)):
        Untrusted(tmp_path / "agent.py")


def test_a_child_that_stops_reading_cannot_block_the_evaluator(tmp_path):
    (tmp_path / "agent.py").write_text(
        "import os, signal, time\n"
        "def f(x): return 0\n"
        "def freeze():  # in a moment, the process stops itself: alive, but it reads nothing\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(0.3); os.kill(os.getppid(), signal.SIGSTOP); os._exit(0)\n")
    agent = Untrusted(tmp_path / "agent.py", budget_s=4)
    agent.call("freeze")
    time.sleep(1)
    start = time.monotonic()
    with pytest.raises(UntrustedError, match="time budget"):
        agent.map("f", [["x" * 1000]] * 1000)  # ~1 MB: far more than a pipe holds
    assert time.monotonic() - start < 30
