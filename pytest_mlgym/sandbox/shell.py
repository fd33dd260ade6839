"""The persistent shell every shipped backend drives: one bash per episode, its protocol and its limits.

The shell reads its commands from a pipe on a descriptor of its own (``SHELL``), buffered, while
its stdin is ``/dev/null``, so a command can never read the commands after it. Each command is
sent as ``eval '<cmd>'; <end> $?``, where ``<end>`` is a shell function defined when the shell
starts that prints a random marker with the exit code and ``$PWD``. The marker is printed from
two halves and never appears in the shell's input, so a command that echoes its input
(``set -v``) or traces it (``set -x``) cannot fake the end of its output. Output is streamed and
capped while it is read: only the head and tail are kept, whatever a command prints.

A backend says how the shell starts (:meth:`ShellSandbox._spawn`: bash under ``isolation.wrap``,
or ``docker exec``), how everything it started is stopped (:meth:`ShellSandbox._stop_all`), and
where to look for out-of-memory kills and disk use; the rest is here.
"""
from __future__ import annotations

import abc
import os
import re
import select
import shlex
import signal
import subprocess
import time
import uuid

import psutil

from .base import ExecResult, Sandbox, SandboxConfig, SandboxError

_STATUS = re.compile(rb" (-?\d+) (.*)")
# bash reads a pipe on stdin a byte at a time (it must leave the rest to the commands it runs);
# a script on another descriptor is read in blocks. The first line sent closes descriptor 3.
SHELL = ["bash", "--noprofile", "--norc", "-c", "exec 3<&0 </dev/null 2>&1; exec bash --noprofile --norc /dev/fd/3"]


class ShellSandbox(Sandbox):
    """A sandbox driven through one long-lived bash: exec, timeouts, output caps, restarts."""

    kind = "sandbox"  # how messages name it ("container")
    _ooms: int | None = None  # the OOM-kill count after the last command

    def __init__(self, workdir: str, config: SandboxConfig):
        self.workdir = workdir
        self.config = config
        self._marker = f"__MLGYM_{uuid.uuid4().hex}__".encode()
        self._end = f"__mlgym_end_{uuid.uuid4().hex[:8]}"
        m = self._marker.decode()
        # the shell's first line: close the command pipe's extra descriptor; define the end marker
        self._prelude = (f"exec 3<&-; {self._end}() {{ builtin printf '\\n%s%s %s %s\\n' {m[:8]} {m[8:]} "
                         f"\"$1\" \"$PWD\"; }}\n").encode()
        self._cwd = workdir
        self._proc: subprocess.Popen | None = None
        self._closed = False

    @property
    def cwd(self) -> str:
        return self._cwd

    # -- what a backend says -----------------------------------------------------------------------
    @abc.abstractmethod
    def _spawn(self) -> subprocess.Popen:
        """Start the shell (``SHELL``) in ``self._cwd``, its stdin and stdout pipes, in a session of its own."""

    def _stop_all(self) -> None:
        """Stop every process the shell started, also those outside its process tree (before the tree is killed)."""

    def _reap(self) -> None:
        """After the shell is gone: make sure what was killed leaves room (a pids limit counts the unreaped)."""

    def _oom_kills(self) -> int:
        """How many of its processes the kernel has killed for memory so far."""
        return 0

    def _disk_problem(self) -> str | None:
        """Why the running command must stop for disk space (checked while it runs), or None."""
        return None

    # -- the shell ---------------------------------------------------------------------------------
    def _start(self) -> None:
        self._proc = self._spawn()
        self._send(self._prelude)

    def _send(self, line: bytes) -> None:
        """Write ``line`` to the shell unbuffered: one system call unless it is long (or interrupted)."""
        assert self._proc is not None and self._proc.stdin is not None
        fd, data = self._proc.stdin.fileno(), memoryview(line)
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError:
            pass  # the shell died; reading its output sees EOF and restarts it

    def _kill(self) -> int | None:
        """Kill the shell and everything it started: what the backend stops, its process group and
        every descendant (also those that left the group with ``setsid``)."""
        if self._proc is None:
            return None
        self._stop_all()
        kill_tree(self._proc.pid)
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pipe in (self._proc.stdin, self._proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        code = self._proc.wait()
        self._proc = None
        self._reap()
        return code

    def exec(self, cmd: str, timeout: float) -> ExecResult:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._start()
        if self._ooms is None:
            self._ooms = self._oom_kills()
        self._send(f"eval {shlex.quote(cmd)}; {self._end} $?\n".encode())
        res = self._finish(*self._read(time.monotonic() + timeout), timeout)
        ooms, self._ooms = self._ooms, self._oom_kills()  # one read a command: the count only grows
        if self._ooms > ooms:  # say why a process died, so the agent (and the record) know
            res = ExecResult(res.returncode, res.output + f"\n[out of memory: a process reached the {self.kind}'s "
                                                          f"limit of {self.config.memory_mb} MB and was killed]",
                             res.timed_out)
        return res

    def _finish(self, out: str, status: str, timeout: float) -> ExecResult:
        restarted = f"the shell was restarted in {self._cwd}, shell variables were lost"
        if status == "timeout":
            self._kill()
            self._start()
            return ExecResult(None, out + f"\n[command timed out after {timeout:g} s: it and every process it "
                                          f"started were killed; {restarted}]", timed_out=True)
        if status.startswith("disk "):
            self._kill()
            self._start()
            return ExecResult(None, out + f"\n[{status[5:]}: the command and every process it started were "
                                          f"killed; free space (rm) before going on; {restarted}]")
        if status == "eof":
            code = self._kill()
            self._start()
            return ExecResult(code, out + f"\n[the shell exited (code {code}) and was restarted in {self._cwd}]")
        rc, _, cwd = status.partition(" ")
        self._cwd = cwd or self._cwd
        return ExecResult(int(rc), out)

    def _read(self, deadline: float) -> tuple[str, str]:
        """Read until the marker line; return (output, "rc cwd" | "timeout" | "eof" | "disk <why>")."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        limit = self.config.output_chars
        half = limit // 2
        buf, dropped, scan = bytearray(), 0, 0
        exited_at = None
        start = time.monotonic()
        disk_check = start + 1.0  # a command that runs for a while has its disk use checked
        poll_at = start + 0.05  # and whether the shell is still there (polled, not at every read)
        while True:
            i = buf.find(self._marker, scan)
            while i >= 0 and (j := buf.find(b"\n", i)) >= 0:
                if ok := _STATUS.fullmatch(buf, i + len(self._marker), j):
                    status = (ok[1] + b" " + ok[2]).decode(errors="replace")
                    return self._text(buf[:i].removesuffix(b"\n"), limit, dropped), status
                i = buf.find(self._marker, j)  # not our status line: part of the output
            now = time.monotonic()
            if now >= deadline:
                return self._text(buf, limit, dropped), "timeout"
            if now >= disk_check:
                if why := self._disk_problem():
                    return self._text(buf, limit, dropped), f"disk {why}"
                disk_check = time.monotonic() + max(1.0, 50 * (time.monotonic() - now))  # at most 2% of a core
            if now >= poll_at:  # the shell may have exited while a background process keeps the pipe open
                poll_at = now + 0.05
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at > 0.2:
                    return self._text(buf, limit, dropped), "eof"
            if not select.select([fd], [], [], min(deadline - now, 0.05))[0]:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return self._text(buf, limit, dropped), "eof"
            scan = max(0, len(buf) - len(self._marker))
            buf += chunk
            # keep the first `half` bytes and a rolling tail; count what falls out in between
            excess = len(buf) - (2 * half + len(self._marker) + 4096)
            if excess > 0:
                del buf[half:half + excess]
                dropped += excess
                scan = max(half, scan - excess)

    @staticmethod
    def _text(buf: bytearray, limit: int, dropped: int) -> str:
        """The output, at most ``limit`` bytes of it: head and tail around a marker."""
        if not dropped and len(buf) <= limit:
            return buf.decode(errors="replace")
        half = limit // 2
        head, tail = bytes(buf[:half]), bytes(buf[max(half, len(buf) - (limit - half)):])
        dropped += len(buf) - len(head) - len(tail)
        return (f"{head.decode(errors='replace')}\n[... {dropped} bytes of output truncated ...]\n"
                f"{tail.decode(errors='replace')}")

    def close(self) -> None:
        self._closed = True
        self._kill()


def kill_tree(pid: int) -> None:
    """Stop ``pid`` and all its descendants (so none can fork away), then kill them all."""
    seen: set[int] = set()
    for _ in range(10):
        new = [p for p in [pid, *descendants(pid)] if p not in seen]
        if not new:
            break
        for p in new:
            try:
                os.kill(p, signal.SIGSTOP)
            except (ProcessLookupError, PermissionError):
                pass
        seen.update(new)
    for p in seen:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the host's process tree (empty when it is gone)."""
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []
