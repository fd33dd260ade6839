"""The local backend: one persistent bash per episode, isolated with ``isolation.wrap``.

Each command is sent to the shell as ``eval '<cmd>' </dev/null 2>&1`` followed by a
``printf`` of a random marker with the exit code and ``$PWD``, so a command can neither read
the marker from stdin nor break the shell's parser. Output is streamed and capped while it is
read: only the head and tail are kept, whatever a command prints.
"""
from __future__ import annotations

import os
import select
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from . import ExecResult, SandboxConfig, SandboxError, isolation


class LocalSandbox:
    def __init__(self, workdir: Path, config: SandboxConfig):
        self.root = Path(workdir).resolve()
        self.workdir = str(self.root)
        self.config = config
        self.isolation = isolation.available()
        self._marker = f"__MLGYM_{uuid.uuid4().hex}__".encode()
        self._cwd = self.workdir
        self._proc: subprocess.Popen | None = None
        self._start()

    # -- the shell ---------------------------------------------------------------------------
    def _start(self) -> None:
        readonly = [self.root / p for p in self.config.readonly if (self.root / p).exists()]
        argv = isolation.wrap(["bash", "--noprofile", "--norc"], mode=self.isolation, cwd=Path(self._cwd),
                              writable=[self.root], readonly=readonly, hidden=self.config.hidden,
                              network=self.config.network)
        try:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=self._cwd, env=isolation.base_env(self.root, self.config.env), start_new_session=True,
                preexec_fn=isolation.limiter(self.config.memory_mb, self.config.file_size_mb, self.config.cpu_s),
            )
        except OSError as e:
            raise SandboxError(f"cannot start the local shell: {e}") from None

    def _kill(self) -> int | None:
        """Kill the shell and everything it started (its session; with bwrap, its PID namespace)."""
        if self._proc is None:
            return None
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for stream in (self._proc.stdin, self._proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        code = self._proc.wait()
        self._proc = None
        return code

    def exec(self, cmd: str, timeout: float) -> ExecResult:
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._start()
        line = (f"eval {shlex.quote(cmd)} </dev/null 2>&1; "
                f"printf '\\n%s %s %s\\n' {self._marker.decode()} \"$?\" \"$PWD\"\n")
        try:
            self._proc.stdin.write(line.encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the shell died; reading below sees EOF and restarts it
        out, status = self._read(time.monotonic() + timeout)
        if status == "timeout":
            self._kill()
            self._start()
            return ExecResult(None, out + f"\n[command timed out after {timeout:g} s: it and every process it "
                                          f"started were killed; the shell was restarted in {self._cwd}, "
                                          f"shell variables were lost]", timed_out=True)
        if status == "eof":
            code = self._kill()
            self._start()
            return ExecResult(code, out + f"\n[the shell exited (code {code}) and was restarted in {self._cwd}]")
        code, _, cwd = status.partition(" ")
        self._cwd = cwd or self._cwd
        return ExecResult(int(code), out)

    def _read(self, deadline: float) -> tuple[str, str]:
        """Read until the marker line; return (output, "rc cwd" | "timeout" | "eof")."""
        fd = self._proc.stdout.fileno()
        half = self.config.output_chars // 2
        buf, dropped, scan = bytearray(), 0, 0
        while True:
            i = buf.find(self._marker, scan)
            if i >= 0 and (j := buf.find(b"\n", i)) >= 0:
                status = buf[i + len(self._marker) + 1:j].decode(errors="replace")
                return self._text(buf[:i].removesuffix(b"\n"), half, dropped), status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._text(buf, half, dropped), "timeout"
            if not select.select([fd], [], [], remaining)[0]:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return self._text(buf, half, dropped), "eof"
            scan = max(0, len(buf) - len(self._marker))
            buf += chunk
            # keep the first `half` bytes and a rolling tail; count what falls out in between
            excess = len(buf) - (2 * half + len(self._marker) + 4096)
            if excess > 0:
                del buf[half:half + excess]
                dropped += excess
                scan = max(half, scan - excess)

    @staticmethod
    def _text(buf: bytearray, half: int, dropped: int) -> str:
        if not dropped:
            return buf.decode(errors="replace")
        head, tail = bytes(buf[:half]), bytes(buf[half:])
        return (f"{head.decode(errors='replace')}\n[... {dropped} bytes of output truncated ...]\n"
                f"{tail.decode(errors='replace')}")

    # -- files -------------------------------------------------------------------------------
    def _inside(self, path: str) -> Path:
        """Resolve ``path`` (relative to the shell's cwd) and refuse anything outside the workspace."""
        p = Path(os.path.realpath(os.path.join(self._cwd, path)))
        if p != self.root and not p.is_relative_to(self.root):
            raise SandboxError(f"{path}: outside the workspace {self.workdir}")
        return p

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        p = self._inside(path)
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            raise SandboxError(f"{path}: {e.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            # the path may have been swapped for a link since it was resolved: check what we opened
            real = Path(os.readlink(f"/proc/self/fd/{fd}"))
            if not real.is_relative_to(self.root) or not os.path.isfile(real):
                raise SandboxError(f"{path}: not a regular file inside the workspace")
            size = os.fstat(fd).st_size
            if max_bytes is not None and size > max_bytes:
                raise SandboxError(f"{path}: {size} bytes, over the limit of {max_bytes}")
            return f.read()

    def write_file(self, path: str, data: bytes) -> None:
        p = self._inside(path)
        if any(p.is_relative_to(self.root / r) for r in self.config.readonly):
            raise SandboxError(f"{path}: read-only")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def copy_in(self, src: Path, dest: str) -> None:
        target = self._inside(dest)
        if Path(src).is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)

    def copy_out(self, src: str, dest: Path) -> None:
        Path(dest).write_bytes(self.read_file(src))

    def close(self) -> None:
        self._kill()
