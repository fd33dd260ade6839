"""The local backend: one persistent bash per episode, isolated with ``isolation.wrap``.

The shell reads its commands from a pipe on a descriptor of its own (``SHELL``), buffered, while
its stdin is ``/dev/null``, so a command can never read the commands after it. Each command is
sent as ``eval '<cmd>'; <end> $?``, where ``<end>`` is a shell function defined when the shell
starts that prints a random marker with the exit code and ``$PWD``. The marker is printed from
two halves and never appears in the shell's input, so a command that echoes its input
(``set -v``) or traces it (``set -x``) cannot fake the end of its output. Output is streamed and
capped while it is read: only the head and tail are kept, whatever a command prints.
"""
from __future__ import annotations

import os
import re
import select
import shlex
import shutil
import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path

from . import ExecResult, SandboxConfig, SandboxError, cgroup, gpu_env, isolation
from .copyout import apparent, discard, stream, too_big

MAX_COPY_OUT = 512 << 20  # an artefact larger than this is refused
DISK_RESERVE = 1 << 30  # a command is stopped when the host's disk has less free space than this
_STATUS = re.compile(rb" (-?\d+) (.*)")
# bash reads a pipe on stdin a byte at a time (it must leave the rest to the commands it runs);
# a script on another descriptor is read in blocks. The first line sent closes descriptor 3.
SHELL = ["bash", "--noprofile", "--norc", "-c", "exec 3<&0 </dev/null 2>&1; exec bash --noprofile --norc /dev/fd/3"]


class LocalSandbox:
    own_group = True  # a control group of its own for limits and killing (the docker backend has the container's)
    _ooms: int | None = None  # the OOM-kill count after the last command

    def __init__(self, workdir: Path, config: SandboxConfig):
        self.root = Path(workdir).resolve()
        self.workdir = str(self.root)
        self.config = config
        self.isolation = isolation.available()
        self._marker = f"__MLGYM_{uuid.uuid4().hex}__".encode()
        self._end = f"__mlgym_end_{uuid.uuid4().hex[:8]}"
        m = self._marker.decode()
        # the shell's first line: close the command pipe's extra descriptor; define the end marker
        self._prelude = (f"exec 3<&-; {self._end}() {{ builtin printf '\\n%s%s %s %s\\n' {m[:8]} {m[8:]} "
                         f"\"$1\" \"$PWD\"; }}\n").encode()
        self._cwd = self.workdir
        self._proc: subprocess.Popen | None = None
        self._closed = False
        self._group = cgroup.Group.create(config.pids, config.memory_mb) if self.own_group else None
        self._start()

    # -- the shell ---------------------------------------------------------------------------
    def _start(self) -> None:
        readonly = [self.root / p for p in self.config.readonly if (self.root / p).exists()]
        argv = isolation.wrap(SHELL, mode=self.isolation, cwd=Path(self._cwd),
                              writable=[self.root], readonly=readonly, hidden=self.config.hidden,
                              network=self.config.network, tmp_size_mb=isolation.tmp_mb(self.config.memory_mb))
        try:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=self._cwd, env=isolation.base_env(self.root, {**gpu_env(self.config), **self.config.env}),
                start_new_session=True, preexec_fn=isolation.limiter(self.config.memory_mb, self.config.file_size_mb,
                                                                        self.config.cpu_s, self._group),
            )
        except OSError as e:
            raise SandboxError(f"cannot start the local shell: {e}") from None
        self._send(self._prelude)

    def _send(self, line: bytes) -> None:
        """Write ``line`` to the shell unbuffered: one system call unless it is long (or interrupted)."""
        data = memoryview(line)
        try:
            while data:
                data = data[os.write(self._proc.stdin.fileno(), data):]
        except OSError:
            pass  # the shell died; reading its output sees EOF and restarts it

    def _kill(self) -> int | None:
        """Kill the shell and everything it started: its process group, every descendant (also
        those that left the group with ``setsid``) and, with bwrap, its whole PID namespace."""
        if self._proc is None:
            return None
        if self._group is not None:
            self._group.kill()
        _kill_tree(self._proc.pid)
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pipe in (self._proc.stdin, self._proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        code = self._proc.wait()
        self._proc = None
        if self._group is not None:  # the killed count against its pids limit until they are reaped
            self._group.kill()
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

    kind = "sandbox"  # how messages name it
    checks_disk = True  # the workspace is a host folder whose size can be measured

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
        code, _, cwd = status.partition(" ")
        self._cwd = cwd or self._cwd
        return ExecResult(int(code), out)

    def _oom_kills(self) -> int:
        return self._group.oom_kills() if self._group is not None else 0

    # -- disk: the workspace may hold `disk_mb`, and the host's disk must keep DISK_RESERVE free --
    def _disk_problem(self) -> str | None:
        """Why the running command must stop for disk space, or None."""
        try:
            st = os.statvfs(self.root)
        except OSError:
            return None
        if st.f_bavail * st.f_frsize < DISK_RESERVE:
            return f"the host's disk is nearly full (under {DISK_RESERVE >> 20} MB free)"
        used = self._disk_used()
        if used > self.config.disk_mb << 20:
            return (f"disk quota exceeded: the workspace holds {used >> 20} MB, over the limit of "
                    f"{self.config.disk_mb} MB")
        return None

    def _disk_used(self) -> int:
        """Bytes the workspace's files take (each file once; the read-only data folders not counted)."""
        skip = {str(self.root / r) for r in self.config.readonly}
        seen, total, todo = set(), 0, [str(self.root)]
        while todo:
            try:
                entries = list(os.scandir(todo.pop()))
            except OSError:
                continue
            for e in entries:
                try:
                    if e.is_dir(follow_symlinks=False):
                        if e.path not in skip:
                            todo.append(e.path)
                        continue
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
        return total

    def _read(self, deadline: float) -> tuple[str, str]:
        """Read until the marker line; return (output, "rc cwd" | "timeout" | "eof" | "disk <why>")."""
        fd = self._proc.stdout.fileno()
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
            if now >= disk_check and self.checks_disk:
                if why := self._disk_problem():
                    return self._text(buf, limit, dropped), f"disk {why}"
                disk_check = time.monotonic() + max(1.0, 50 * (time.monotonic() - now))  # at most 2% of a core
            if now >= poll_at:  # the shell may have exited while a background process keeps the pipe open
                poll_at = now + 0.05
                if exited_at is None and self._proc.poll() is not None:
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

    # -- files -------------------------------------------------------------------------------
    def _inside(self, path: str) -> Path:
        """Resolve ``path`` (relative to the shell's cwd) and refuse anything outside the workspace."""
        p = Path(os.path.realpath(os.path.join(self._cwd, path)))
        if p != self.root and not p.is_relative_to(self.root):
            raise SandboxError(f"{path}: outside the workspace {self.workdir}")
        return p

    def _open_regular(self, path: str) -> tuple[int, os.stat_result]:
        """A descriptor of ``path`` for reading: a regular file inside the workspace, opened without
        following a link (O_NOFOLLOW) or blocking (a FIFO planted by the agent), and its stat."""
        p = self._inside(path)
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            raise SandboxError(f"{path}: {e.strerror}") from None
        # the path may have been swapped for a link since it was resolved: check what we opened
        real, st = Path(os.readlink(f"/proc/self/fd/{fd}")), os.fstat(fd)
        if not real.is_relative_to(self.root) or not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise SandboxError(f"{path}: not a regular file inside the workspace")
        return fd, st

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        fd, st = self._open_regular(path)
        with os.fdopen(fd, "rb") as f:
            if max_bytes is not None and st.st_size > max_bytes:
                raise SandboxError(f"{path}: {st.st_size} bytes, over the limit of {max_bytes}")
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
            if max_bytes is not None and len(data) > max_bytes:  # it grew while we read it
                raise SandboxError(f"{path}: over the limit of {max_bytes} bytes")
            return data

    def write_file(self, path: str, data: bytes) -> None:
        p = self._inside(path)
        if any(p.is_relative_to(self.root / r) for r in self.config.readonly):
            raise SandboxError(f"{path}: read-only")
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            # no following a link swapped in since the check; a FIFO fails instead of blocking
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as e:
            raise SandboxError(f"{path}: {e.strerror}") from None
        with os.fdopen(fd, "wb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SandboxError(f"{path}: not a regular file")
            os.set_blocking(fd, True)
            f.truncate(0)
            f.write(data)

    def copy_in(self, src: Path, dest: str) -> None:
        target = self._inside(dest)
        if Path(src).is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)

    def copy_out(self, src: str, dest: Path, max_bytes: int = MAX_COPY_OUT) -> None:
        """Copy a regular file, or a folder of regular files (no links), out of the workspace. The
        apparent size (holes count) is checked before anything is copied and again while copying;
        the copy streams in chunks and keeps holes. Refused, it leaves nothing behind."""
        p, dest = self._inside(src), Path(dest)
        if p.is_dir():
            files = [(os.path.join(d, n), dest / Path(d).relative_to(p) / n) for d, _, names in os.walk(p) for n in names]
        else:
            files = [(str(p), dest)]
        size = sum(apparent(f) for f, _ in files)
        if size > max_bytes:
            raise SandboxError(too_big(src, size, max_bytes))
        existed, copied = os.path.lexists(dest), 0
        try:
            for path, target in files:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, st = self._open_regular(path)
                try:
                    if st.st_size > max_bytes - copied:  # it grew since it was measured
                        raise SandboxError(too_big(src, copied + st.st_size, max_bytes))
                    with open(target, "wb") as out:
                        n = stream(lambda k, fd=fd: os.read(fd, k), out.fileno(), max_bytes - copied)
                finally:
                    os.close(fd)
                if n < 0:
                    raise SandboxError(f"{src}: grew past the limit of {max_bytes} bytes while it was copied")
                copied += n
            if p.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
        except BaseException:
            discard(dest, [t for _, t in files], existed)
            raise

    def close(self) -> None:
        self._closed = True
        self._kill()
        if self._group is not None:
            self._group.remove()
            self._group = None


def _kill_tree(pid: int) -> None:
    """Stop ``pid`` and all its descendants (so none can fork away), then kill them all."""
    seen: set[int] = set()
    for _ in range(10):
        new = [p for p in [pid, *_descendants(pid)] if p not in seen]
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


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the host's process tree (empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    for e in entries:
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(e))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), ()):
            out.append(c)
            todo.append(c)
    return out
