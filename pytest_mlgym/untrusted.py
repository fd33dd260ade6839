"""Call functions of an untrusted Python file from a trusted evaluator, in a child process.

Evaluators never import agent code into their own process: it could patch ``json``, print a
fake metrics line, or read the evaluator's state. :class:`Untrusted` imports the file in a
child process whose real stdout is kept private for the protocol (whatever the agent code
prints goes to stderr), seeds ``random``/``numpy`` from the given seed, and puts only the
file's own folder on ``sys.path``. Arguments and results travel as JSON lines; the parent
checks a total time budget and kills the child's whole process group on close.

    with Untrusted("strategy.py", seed=0, budget_s=30) as agent:
        moves = agent.map("row_strategy", [[h] for h in histories])   # one round trip
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path


class UntrustedError(Exception):
    """The agent's code failed (import, exception, timeout, bad result, crash); one-line reason."""


class Untrusted:
    def __init__(self, path: str | Path, *, seed: int = 0, budget_s: float = 60.0):
        self.path = Path(path).resolve()
        self.deadline = time.monotonic() + budget_s
        self.budget_s = budget_s
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.update(PYTHONHASHSEED=str(seed), MLGYM_SEED=str(seed))
        self.proc = subprocess.Popen(
            [sys.executable, "-B", "-s", "-u", __file__, str(self.path), str(seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=self.path.parent,
            env=env, start_new_session=True)
        self._buf = b""
        os.set_blocking(self.proc.stdin.fileno(), False)
        self._receive()  # the import result

    def call(self, fn: str, *args):
        """``fn(*args)`` in the child."""
        return self._request({"fn": fn, "args": list(args)})

    def map(self, fn: str, calls: list[list]) -> list:
        """``[fn(*args) for args in calls]`` in the child, in one round trip."""
        return self._request({"fn": fn, "batch": [list(a) for a in calls]})

    def _request(self, msg: dict):
        if self.proc.poll() is not None:
            raise UntrustedError(f"the agent's process is gone (exit code {self.proc.returncode})")
        data = memoryview(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
        fd = self.proc.stdin.fileno()
        while data:  # a child that stops reading must not block us past the budget
            self._wait(fd, write=True)
            try:
                data = data[os.write(fd, data):]
            except (BrokenPipeError, OSError):
                raise UntrustedError(f"the agent's process died (exit code {self.proc.wait()})") from None
        return self._receive()

    def _wait(self, fd: int, write: bool = False) -> None:
        left = self.deadline - time.monotonic()
        ready = select.select([], [fd], [], max(left, 0))[1] if write else select.select([fd], [], [], max(left, 0))[0]
        if not ready:
            self.close()
            raise UntrustedError(f"the agent's code ran past its time budget of {self.budget_s:g} s")

    def _receive(self):
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            self._wait(fd)
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                code = self.proc.wait()
                raise UntrustedError(f"the agent's process exited (code {code}) before answering")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError:
            raise UntrustedError("the agent's process sent a malformed reply") from None
        if "error" in reply:
            raise UntrustedError(str(reply["error"])[:500])
        return reply.get("ok")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def __enter__(self) -> "Untrusted":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- the child ----------------------------------------------------------------------------------
def _child(path: str, seed: int) -> None:
    # the protocol channel is a private copy of stdout; agent prints go to stderr
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    send, readline, dumps, loads = proto.write, sys.stdin.buffer.readline, json.dumps, json.loads

    def reply(**kw):
        try:
            text = dumps(kw, default=_plain, allow_nan=False)
        except (TypeError, ValueError) as e:
            text = dumps({"error": f"the result is not plain data (numbers, strings, lists, dicts): {e}"})
        send(text + "\n")
        proto.flush()

    def fail(what: str, e: BaseException) -> None:
        reply(error=f"{what}: {type(e).__name__}: {_short(e)}")

    import importlib.util
    import random

    random.seed(seed)
    try:
        import numpy
        numpy.random.seed(seed)
    except ImportError:
        pass
    sys.path[0] = os.path.dirname(path)
    try:
        spec = importlib.util.spec_from_file_location("submission", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except BaseException as e:  # SystemExit and KeyboardInterrupt included: report, never hang
        fail(f"importing {os.path.basename(path)} failed", e)
        return
    reply(ok=None)
    while line := readline():
        msg = loads(line)
        fn = getattr(module, msg["fn"], None)
        if not callable(fn):
            reply(error=f"{os.path.basename(path)} defines no function {msg['fn']}()")
            continue
        try:
            if "batch" in msg:
                reply(ok=[fn(*args) for args in msg["batch"]])
            else:
                reply(ok=fn(*msg["args"]))
        except BaseException as e:
            fail(f"{msg['fn']}() raised", e)


def _plain(o):
    if hasattr(o, "tolist"):  # numpy scalars and arrays
        return o.tolist()
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not plain data")


def _short(e: BaseException) -> str:
    try:
        return " ".join(str(e).split())[:200]
    except BaseException:
        return "<unprintable>"


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
