"""A workspace that is a folder of this machine: the file operations of the local backend and of a
container whose workspace is bind-mounted. Every path is resolved against the shell's cwd and
refused outside the workspace; files are opened without following links or blocking on FIFOs;
artefacts come out in bounded memory (``copyout``); the workspace's disk use is measured.
"""
from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from .base import SandboxError
from .copyout import apparent, discard, stream, too_big

MAX_COPY_OUT = 512 << 20  # an artefact larger than this is refused
DISK_RESERVE = 1 << 30  # a command is stopped when the host's disk has less free space than this


class HostFiles:
    """The files of the workspace folder ``root``, as the harness reaches them."""

    def __init__(self, root: Path, *, readonly: tuple[str, ...], disk_mb: int, cwd: Callable[[], str]):
        self.root = Path(root).resolve()
        self.workdir = str(self.root)
        self.readonly, self.disk_mb, self._cwd = readonly, disk_mb, cwd

    # -- disk: the workspace may hold `disk_mb`, and the host's disk must keep DISK_RESERVE free --
    def disk_problem(self) -> str | None:
        """Why the running command must stop for disk space, or None."""
        try:
            st = os.statvfs(self.root)
        except OSError:
            return None
        if st.f_bavail * st.f_frsize < DISK_RESERVE:
            return f"the host's disk is nearly full (under {DISK_RESERVE >> 20} MB free)"
        used = self.disk_used()
        if used > self.disk_mb << 20:
            return (f"disk quota exceeded: the workspace holds {used >> 20} MB, over the limit of "
                    f"{self.disk_mb} MB")
        return None

    def disk_used(self) -> int:
        """Bytes the workspace's files take (each file once; the read-only data folders not counted)."""
        skip = {str(self.root / r) for r in self.readonly}
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

    def inside(self, path: str) -> Path:
        """Resolve ``path`` (relative to the shell's cwd) and refuse anything outside the workspace."""
        p = Path(os.path.realpath(os.path.join(self._cwd(), path)))
        if p != self.root and not p.is_relative_to(self.root):
            raise SandboxError(f"{path}: outside the workspace {self.workdir}")
        return p

    def _open_regular(self, path: str) -> tuple[int, os.stat_result]:
        """A descriptor of ``path`` for reading: a regular file inside the workspace, opened without
        following a link (O_NOFOLLOW) or blocking (a FIFO planted by the agent), and its stat."""
        p = self.inside(path)
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
        p = self.inside(path)
        if any(p.is_relative_to(self.root / r) for r in self.readonly):
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
        target = self.inside(dest)
        if Path(src).is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)

    def copy_out(self, src: str, dest: Path, max_bytes: int = MAX_COPY_OUT) -> None:
        """Copy a regular file, or a folder of regular files (no links), out of the workspace. The
        apparent size (holes count) is checked before anything is copied and again while copying;
        the copy streams in chunks and keeps holes. Refused, it leaves nothing behind."""
        p, dest = self.inside(src), Path(dest)
        if p.is_dir():
            files = [(os.path.join(d, n), dest / Path(d).relative_to(p) / n)
                     for d, _, names in os.walk(p) for n in names]
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
