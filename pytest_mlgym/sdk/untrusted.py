"""Call functions of the agent's Python file from a trusted evaluator.

The agent's code never runs in the evaluator's process, nor beside it: :class:`Untrusted` asks the
harness (the broker at ``$MLGYM_RUNNER``, see ``pytest_mlgym.sandbox.runner``) to run the file
in a sandbox of its own, with no private data, no evaluator environment and another PID
namespace (or container), and talks to it over two pipes. Run by hand (no harness), the
evaluator starts a broker of its own, with the same isolation. In the child, the real stdout is
kept private for the protocol (whatever the agent's code prints goes to stderr), ``random`` and
numpy's global RNG are seeded from the given seed, and only the file's own folder is on
``sys.path``. Arguments and results travel as JSON lines; the evaluator checks a wall-clock
budget, the broker a CPU-time budget over all the code's processes.

    with Untrusted("strategy.py", seed=0, budget_s=30) as agent:
        moves = agent.map("row_strategy", [[h] for h in histories])   # one round trip
"""
from __future__ import annotations

import json
import os
import select
import socket
import sys
import time
from pathlib import Path


class UntrustedError(Exception):
    """The agent's code failed (import, exception, timeout, bad result, crash); one-line reason."""


class Untrusted:
    def __init__(self, path: str | Path, *, seed: int = 0, budget_s: float = 60.0, cpu_s: float | None = None):
        self.path = Path(path).resolve()
        self.budget_s = budget_s
        self.broker = None  # our own, when no harness serves us
        address = os.environ.get("MLGYM_RUNNER")
        if not address:
            from ..sandbox.runner import Broker
            self.broker = Broker(self.path.parent)
            address = str(self.broker.path)
        self._ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._w = self._r = None
        self._buf = self._ctl_buf = b""
        self._ended: str | None = None
        try:
            self._ctl.connect(address)
            self._ctl.sendall(json.dumps({"file": str(self.path), "seed": seed, "cpu_s": cpu_s}).encode() + b"\n")
            msg, fds, _, _ = socket.recv_fds(self._ctl, 65536, 2)
        except OSError as e:
            self.close()
            raise UntrustedError(f"cannot reach the harness to run the agent's code: {e}") from None
        reply = _json(msg.partition(b"\n")[0])
        if "error" in reply or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            self.close()
            raise UntrustedError(f"the agent's code could not be started: {reply.get('error', 'no pipes')}")
        self._w, self._r = fds
        os.set_blocking(self._w, False)
        self.deadline = time.monotonic() + budget_s  # from the moment the code runs
        self._receive()  # the import result

    def call(self, fn: str, *args):
        """``fn(*args)`` in the child."""
        return self._request({"fn": fn, "args": list(args)})

    def map(self, fn: str, calls: list[list], tuples: bool = False) -> list:
        """``[fn(*args) for args in calls]`` in the child, in one round trip. ``tuples``: the items of
        list arguments arrive as tuples (a history of ``(move, move)`` pairs); JSON has only lists."""
        return self._request({"fn": fn, "batch": [list(a) for a in calls], **({"tuples": True} if tuples else {})})

    def cpu_seconds(self) -> float:
        """CPU time the agent's code has used so far, all its processes together (as the broker counts it)."""
        self._ctl.sendall(b"{}\n")
        while True:
            msg = self._control(timeout=10)
            if msg is None or "cpu_s" in msg:
                return float((msg or {}).get("cpu_s") or 0.0)

    def _request(self, msg: dict):
        if self._w is None:
            raise UntrustedError(self._ended or "the agent's process is gone")
        data = memoryview(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
        while data:  # a child that stops reading must not block us past the budget
            self._wait(self._w, write=True)
            try:
                data = data[os.write(self._w, data):]
            except BlockingIOError:
                continue
            except OSError:
                raise UntrustedError(self._gone("died")) from None
        return self._receive()

    def _wait(self, fd: int, write: bool = False) -> None:
        left = self.deadline - time.monotonic()
        ready = select.select([], [fd], [], max(left, 0))[1] if write else select.select([fd], [], [], max(left, 0))[0]
        if not ready:
            self.close()
            raise UntrustedError(f"the agent's code ran past its time budget of {self.budget_s:g} s")

    def _receive(self):
        while b"\n" not in self._buf:
            if (r := self._r) is None:
                raise UntrustedError(self._ended or "the agent's process is gone")
            self._wait(r)
            try:
                chunk = os.read(r, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise UntrustedError(self._gone("exited"))
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        reply = _json(line)
        if not reply:
            raise UntrustedError("the agent's process sent a malformed reply")
        if "error" in reply:
            raise UntrustedError(" ".join(str(reply["error"]).split())[:500])
        return reply.get("ok")

    def _gone(self, how: str) -> str:
        """Why the code's process ended, as the broker saw it; the code is stopped for good."""
        status = None
        while (msg := self._control(timeout=5)) is not None:
            if "exit" in msg:
                status = msg
                break
        self.close()
        if status and status.get("why"):
            self._ended = status["why"]
        elif status and status.get("exit") is not None:
            self._ended = f"the agent's process {how} (code {status['exit']}) before answering"
        else:
            self._ended = f"the agent's process {how} before answering"
        return self._ended

    def _control(self, timeout: float) -> dict | None:
        """The broker's next message, or None (hung up, or nothing within ``timeout``)."""
        buf = self._ctl_buf
        end = time.monotonic() + timeout
        while b"\n" not in buf:
            left = end - time.monotonic()
            try:
                if left <= 0 or not select.select([self._ctl], [], [], left)[0]:
                    return None
                chunk = self._ctl.recv(4096)
            except (OSError, ValueError):
                return None
            if not chunk:
                return None
            buf += chunk
            self._ctl_buf = buf
        line, _, self._ctl_buf = buf.partition(b"\n")
        return _json(line)

    def close(self) -> None:
        """Stop the code (the broker kills it when we hang up)."""
        for fd in (self._w, self._r):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._w = self._r = None
        try:
            self._ctl.close()
        except OSError:
            pass
        if self.broker is not None:
            self.broker.close()

    def __enter__(self) -> "Untrusted":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _json(line: bytes) -> dict:
    try:
        msg = json.loads(line)
    except ValueError:
        return {}
    return msg if isinstance(msg, dict) else {}


# -- the child (run as a script in the agent code's sandbox: the standard library only) ------------
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
        detail = _short(e)  # a bare ``raise MemoryError`` has none
        reply(error=f"{what}: {type(e).__name__}" + (f": {detail}" if detail else ""))

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
        if spec is None or spec.loader is None:  # not a .py file
            raise ImportError(f"no Python module loader for {os.path.basename(path)}")
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
            if "batch" in msg and msg.get("tuples"):
                reply(ok=[fn(*[[tuple(x) if type(x) is list else x for x in a] if type(a) is list else a
                               for a in args]) for args in msg["batch"]])
            elif "batch" in msg:
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
