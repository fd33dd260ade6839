"""The docker backend on an engine of this machine: the workspace is bind-mounted at its host path
(the task's data read-only on top) with the host's Python prefix read-only, so the task stack
needs no registry. The harness reaches the files as a host folder (``files.py``); whatever it
writes is given to the container's user."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..base import SandboxConfig, SandboxError
from ..files import MAX_COPY_OUT, HostFiles
from .container import ContainerSandbox
from .engine import Engine, is_remote
from .image import UID


class DockerSandbox(ContainerSandbox):
    def __init__(self, workdir: Path, config: SandboxConfig, engine: Engine | None = None):
        self.files = HostFiles(workdir, readonly=config.readonly, disk_mb=config.disk_mb, cwd=lambda: self._cwd)
        super().__init__(workdir, config, engine)

    def _workspace(self, root: Path, config: SandboxConfig, python: str) -> tuple[Path, dict, list]:
        if is_remote(self.host, config.docker):
            raise SandboxError(f"the engine at {self.host} cannot mount this machine's folders "
                               f"(use pytest_mlgym.sandbox.create('docker', ...))")
        own(root, config.readonly)
        binds = {str(root): {"bind": str(root), "mode": "rw"}}
        for p in config.readonly:
            if (root / p).exists():
                binds[str(root / p)] = {"bind": str(root / p), "mode": "ro"}
        if python:  # the host's Python stack, read-only, in the image built without one
            for prefix in {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}:
                binds[str(prefix)] = {"bind": str(prefix), "mode": "ro"}
        return root, binds, []

    def evaluator_engine(self) -> Engine:
        return self.engine  # it mounts this machine's task folder: the evaluator runs in a container of its own

    def _disk_problem(self) -> str | None:
        return self.files.disk_problem()

    # -- files: as the harness, then owned by the container's user ---------------------------------------
    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        return self.files.read_file(path, max_bytes)

    def copy_out(self, src: str, dest: Path, max_bytes: int = MAX_COPY_OUT) -> None:
        self.files.copy_out(src, dest, max_bytes)

    def write_file(self, path: str, data: bytes) -> None:
        self.files.write_file(path, data)
        p = self.files.inside(path)
        for d in [p, *p.parents]:
            if d == self.root or not d.is_relative_to(self.root):
                break
            os.lchown(d, UID, UID)  # the file and any folder made for it

    def copy_in(self, src: Path, dest: str) -> None:
        self.files.copy_in(src, dest)
        own(self.files.inside(dest), self.config.readonly)


def own(root: Path, readonly: tuple[str, ...] = ()) -> None:
    """The container's user owns the folder ``root``; its read-only paths stay the harness's."""
    ro = [root / p for p in readonly]
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if any(d == r or d.is_relative_to(r) for r in ro):
            dirnames[:] = []
            continue
        os.lchown(d, UID, UID)
        for name in filenames:
            if not any((d / name) == r for r in ro):
                os.lchown(d / name, UID, UID)
