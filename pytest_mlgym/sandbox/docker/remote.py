"""The docker backend on a remote Docker Engine (tcp://, ssh://): it cannot see this machine's files,
so the workspace lives in a volume of the container (and the image must be self-contained), copied in and
out through the engine's archive API. Paths are resolved inside the container (as its user) and checked
to stay in the workspace; only regular files come out, never links, within a limit on their apparent
sizes (the tar headers'), streamed from the engine and written in chunks, holes kept: the harness never
holds an artefact.
"""
from __future__ import annotations

import contextlib
import io
import os
import posixpath
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from ...compute import Machine, parse_cpuinfo
from ..base import SandboxConfig, SandboxError
from ..copyout import CHUNK, discard, stream, too_big
from ..files import MAX_COPY_OUT
from .container import ContainerSandbox
from .engine import Engine
from .image import UID

WORKDIR = "/workspace"  # where a remote engine's container keeps the workspace (a volume)
HEADERS = 16 << 20  # what an archive may hold besides its files' bytes: tar headers (some 16k files)


def _tar(entries: list[tuple[str, Path | bytes | None, int, int]]) -> bytes:
    """A tar of (name, host path or bytes or None for a folder, uid, mode) entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, src, uid, mode in entries:
            info = tarfile.TarInfo(name)
            info.uid = info.gid = uid
            info.mode = mode
            info.mtime = Path(src).stat().st_mtime if isinstance(src, Path) else time.time()
            if src is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = src if isinstance(src, bytes) else Path(src).read_bytes()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _entries(src: Path, readonly: tuple[str, ...] = (), prefix: str = ".") -> list:
    """Tar entries for a host folder's regular files and folders (links are not copied)."""
    out: list[tuple[str, Path | None, int, int]] = [(prefix, None, UID, 0o755)] if src.is_dir() else []
    if not src.is_dir():
        return [(prefix, src, UID, 0o644)]
    ro = [src / r for r in readonly]
    for dirpath, dirnames, filenames in os.walk(src):
        d = Path(dirpath)
        for name in sorted(dirnames) + sorted(filenames):
            p = d / name
            if p.is_symlink():
                continue
            frozen = any(p == r or p.is_relative_to(r) for r in ro)  # root's and not writable: read-only
            uid, mode = (0, 0o555 if p.is_dir() else 0o444) if frozen else (UID, 0o755 if p.is_dir() else 0o644)
            out.append((f"{prefix}/{p.relative_to(src)}", None if p.is_dir() else p, uid, mode))
    return out


def upload(container, src: Path, dest: Path, readonly: tuple[str, ...] = ()) -> None:
    container.put_archive(str(dest), _tar(_entries(src, readonly)))


_MACHINES: dict[str | None, Machine] = {}  # per engine: probed once per process


def engine_machine(sb) -> Machine:
    """The engine's host: its CPU count from ``docker info``, its CPU model and cores from the kernel's
    ``/proc/cpuinfo`` as the new container sees it (before the agent has run anything in it)."""
    if sb.host not in _MACHINES:
        try:
            ncpu = int(sb.client.info().get("NCPU") or 0) or None
        except Exception:  # an engine that does not say
            ncpu = None
        code, text = _run(sb, ["cat", "/proc/cpuinfo"])
        cpu = parse_cpuinfo(text) if code == 0 else Machine()
        _MACHINES[sb.host] = Machine(cpu_model=cpu.cpu_model, logical_cores=ncpu or cpu.logical_cores,
                                     physical_cores=cpu.physical_cores)
    return _MACHINES[sb.host]


def _run(sb, argv: list[str]) -> tuple[int, str]:
    res = sb.container.exec_run(argv, user=f"{UID}:{UID}", workdir=sb._cwd)
    return res.exit_code, res.output.decode(errors="replace").strip()


def resolve(sb, path: str) -> str:
    """``path`` (relative to the shell's cwd) resolved inside the container; refused outside the workspace."""
    code, real = _run(sb, ["realpath", "-m", "--", path])
    root = str(sb.root)
    if code != 0 or not (real == root or real.startswith(root + "/")):
        raise SandboxError(f"{path}: outside the workspace {sb.workdir}")
    return real


class _Capped(io.RawIOBase):
    """The engine's archive stream as a file, read chunk by chunk and refused past ``limit`` bytes."""

    def __init__(self, chunks, limit: int, what: str):
        self._chunks, self._limit, self._what = iter(chunks), limit, what
        self._left, self.count = memoryview(b""), 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._left:
            try:
                chunk = next(self._chunks, b"")
            except Exception as e:  # the engine went away mid-stream
                raise SandboxError(f"{self._what}: the engine's archive broke off ({type(e).__name__})") from None
            if not chunk:
                return 0
            self.count += len(chunk)
            if self.count > self._limit:
                raise SandboxError(f"{self._what}: the archive passed {self._limit} bytes (the files' limit and "
                                   f"{HEADERS >> 20} MB of tar headers)")
            self._left = memoryview(chunk)
        n = min(len(b), len(self._left))
        b[:n], self._left = self._left[:n], self._left[n:]
        return n


@contextlib.contextmanager
def _archive(sb, real: str, max_bytes: int) -> Iterator[tuple[tarfile.TarFile, _Capped]]:
    """The tar of ``real`` as the engine streams it (never held whole), read member by member."""
    try:
        chunks, _ = sb.container.get_archive(real, chunk_size=CHUNK)
    except Exception:  # not found, or gone
        raise SandboxError(f"{real}: No such file or directory") from None
    reader = _Capped(chunks, max_bytes + HEADERS, real)
    try:
        with tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK) as tar:
            yield tar, reader
    except tarfile.TarError as e:
        raise SandboxError(f"{real}: a broken archive from the engine ({' '.join(str(e).split())})") from None
    finally:
        getattr(chunks, "close", lambda: None)()  # an abandoned stream drops its connection


def read_file(sb, path: str, max_bytes: int | None = None) -> bytes:
    real = resolve(sb, path)
    limit = MAX_COPY_OUT if max_bytes is None else max_bytes
    with _archive(sb, real, limit) as (tar, _):
        first = tar.next()
        if first is None or not first.isfile():
            raise SandboxError(f"{path}: not a regular file inside the workspace")
        if first.size > limit:
            raise SandboxError(f"{path}: {first.size} bytes, over the limit of {limit}")
        return _member(tar, first).read(limit + 1)


def write_file(sb, path: str, data: bytes) -> None:
    real = resolve(sb, path)
    if any(real == str(sb.root / r) or real.startswith(str(sb.root / r) + "/") for r in sb.config.readonly):
        raise SandboxError(f"{path}: read-only")
    folder, name = posixpath.split(real)
    code, out = _run(sb, ["mkdir", "-p", "--", folder])
    if code != 0:
        raise SandboxError(f"{path}: {out}")
    sb.container.put_archive(folder, _tar([(name, data, UID, 0o644)]))


def copy_in(sb, src: Path, dest: str) -> None:
    real = resolve(sb, dest)
    folder = real if src.is_dir() else posixpath.dirname(real)
    _run(sb, ["mkdir", "-p", "--", folder])
    entries = _entries(src) if src.is_dir() else [(posixpath.basename(real), src, UID, 0o644)]
    sb.container.put_archive(folder, _tar(entries))


def copy_out(sb, src: str, dest: Path, max_bytes: int = MAX_COPY_OUT) -> None:
    """A regular file, or a folder of regular files (no links), out of the container: refused on
    the apparent sizes in the tar headers before their bytes are read; refused, nothing is left."""
    real, existed, written = resolve(sb, src), os.path.lexists(dest), list[Path]()
    try:
        with _archive(sb, real, max_bytes) as (tar, reader):
            _extract(tar, reader, src, dest, max_bytes, written)
    except BaseException:
        discard(dest, written, existed)
        raise


def _member(tar: tarfile.TarFile, m: tarfile.TarInfo):
    """A regular file's bytes in the archive."""
    if (f := tar.extractfile(m)) is None:
        raise SandboxError(f"{m.name}: not a regular file inside the workspace")
    return f


def _extract(tar: tarfile.TarFile, reader: _Capped, src: str, dest: Path, max_bytes: int, written: list[Path]) -> None:
    top, total = tar.next(), 0
    if top is None:
        raise SandboxError(f"{src}: No such file or directory")
    if not (top.isfile() or top.isdir()):
        raise SandboxError(f"{src}: not a regular file inside the workspace")
    m: tarfile.TarInfo | None = top
    while m is not None:
        try:
            rel = PurePosixPath(m.name).relative_to(top.name)
        except ValueError:
            rel = None
        if rel is None or ".." in rel.parts or (m is not top and top.isfile()):
            raise SandboxError(f"{src}: an unexpected entry {m.name!r} in the engine's archive")
        target = dest / rel
        if m.isdir():
            target.mkdir(parents=True, exist_ok=True)
        elif not m.isfile():
            raise SandboxError(f"{src}/{rel}: not a regular file inside the workspace")
        else:
            total += m.size
            if total > max_bytes:
                raise SandboxError(too_big(src, total, max_bytes))
            target.parent.mkdir(parents=True, exist_ok=True)
            written.append(target)
            with open(target, "wb") as out:
                stream(_member(tar, m).read, out.fileno(), m.size)  # no more than the header says
        if reader.count - total > HEADERS + 2 * CHUNK:  # headers of many (empty) files; what is read ahead
            raise SandboxError(f"{src}: too many files (over {HEADERS >> 20} MB of tar headers)")
        m = tar.next()


class RemoteDockerSandbox(ContainerSandbox):
    """A container on an engine that cannot see this machine: its workspace is a volume, filled with
    a copy of the host folder; files go in and out through the engine's archive API; the evaluator
    scores here (the engine cannot mount the task folder), never in the agent's container."""

    files_local = False  # the workspace is the engine's, not a folder of this machine

    def _workspace(self, root: Path, config: SandboxConfig, python: str) -> tuple[Path, dict, list]:
        import docker.types
        return Path(WORKDIR), {}, [docker.types.Mount(WORKDIR, None, type="volume")]

    def _path(self, python: str) -> str:
        return "/usr/local/bin:/usr/bin:/bin"  # the image's own Python

    def _populate(self, root: Path) -> None:
        upload(self.container, root, Path(WORKDIR), readonly=self.config.readonly)
        self._machine = engine_machine(self)  # before the agent's first command

    def machine(self) -> Machine:
        return self._machine

    def evaluator_engine(self) -> Engine | None:
        return None

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        return read_file(self, path, max_bytes)

    def write_file(self, path: str, data: bytes) -> None:
        write_file(self, path, data)

    def copy_in(self, src: Path, dest: str) -> None:
        copy_in(self, Path(src), dest)

    def copy_out(self, src: str, dest: Path, max_bytes: int = MAX_COPY_OUT) -> None:
        copy_out(self, src, Path(dest), max_bytes)
