"""Workspaces on a remote Docker Engine (tcp://, ssh://): it cannot see this machine's files, so
the workspace lives in a volume of the container, copied in and out through the engine's archive
API. Paths are resolved inside the container (as its user) and checked to stay in the workspace;
only regular files come out, never links, within a size limit.
"""
from __future__ import annotations

import io
import os
import posixpath
import tarfile
import time
from pathlib import Path

from . import SandboxError

UID = 65534
MAX_COPY_OUT = 512 << 20


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
    out = [(prefix, None, UID, 0o755)] if src.is_dir() else []
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


def _fetch(sb, real: str, max_bytes: int) -> tarfile.TarFile:
    try:
        stream, _ = sb.container.get_archive(real)
    except Exception:  # noqa: BLE001 - not found, or gone
        raise SandboxError(f"{real}: No such file or directory") from None
    buf, size = io.BytesIO(), 0
    for chunk in stream:
        size += len(chunk)
        if size > max_bytes + (1 << 20):  # tar headers aside, it is too big: stop reading
            raise SandboxError(f"{real}: over the limit of {max_bytes} bytes")
        buf.write(chunk)
    buf.seek(0)
    return tarfile.open(fileobj=buf, mode="r")


def read_file(sb, path: str, max_bytes: int | None = None) -> bytes:
    real = resolve(sb, path)
    limit = MAX_COPY_OUT if max_bytes is None else max_bytes
    with _fetch(sb, real, limit) as tar:
        first = tar.next()
        if first is None or not first.isfile():
            raise SandboxError(f"{path}: not a regular file inside the workspace")
        if first.size > limit:
            raise SandboxError(f"{path}: {first.size} bytes, over the limit of {limit}")
        return tar.extractfile(first).read()


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
    """A regular file, or a folder of regular files (no links), out of the container."""
    real = resolve(sb, src)
    with _fetch(sb, real, max_bytes) as tar:
        members = tar.getmembers()
        if not members:
            raise SandboxError(f"{src}: No such file or directory")
        top, total = members[0], 0
        if top.isfile():
            dest.write_bytes(tar.extractfile(top).read())
            return
        if not top.isdir():
            raise SandboxError(f"{src}: not a regular file inside the workspace")
        dest.mkdir(parents=True, exist_ok=True)
        for m in members[1:]:
            rel = Path(m.name).relative_to(top.name)
            if m.isdir():
                (dest / rel).mkdir(parents=True, exist_ok=True)
                continue
            if not m.isfile():
                raise SandboxError(f"{src}/{rel}: not a regular file inside the workspace")
            total += m.size
            if total > max_bytes:
                raise SandboxError(f"{src}: over the limit of {max_bytes} bytes")
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(tar.extractfile(m).read())
