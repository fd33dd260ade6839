"""The local backend: one persistent bash per episode (``shell.py``), isolated with ``isolation.wrap``
(bubblewrap where it works), limited by rlimits and, where one can be made, a control group of its
own; the workspace is a folder of this machine (``files.py``)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .. import compute
from ..compute import CpuSource
from . import cgroup, isolation
from .base import IsolationPlan, SandboxConfig, SandboxError, gpu_env
from .files import MAX_COPY_OUT, HostFiles
from .shell import SHELL, ShellSandbox


class LocalSandbox(ShellSandbox):
    def __init__(self, workdir: Path, config: SandboxConfig):
        self.files = HostFiles(workdir, readonly=config.readonly, disk_mb=config.disk_mb, cwd=lambda: self._cwd)
        self.root = self.files.root
        super().__init__(str(self.root), config)
        self.isolation = self._mode = isolation.available()
        self._group = cgroup.Group.create(config.pids, config.memory_mb)  # limits, and the list of its processes
        # whether the group counts CPU time (v1 needs cpuacct); if not, the CPU seconds of the shells killed
        # so far (timeouts, restarts) are kept here
        self._grouped_cpu = self._group is not None and self._group.cpu_seconds() is not None
        self._cpu_gone = 0.0
        self._start()

    # -- lifecycle ---------------------------------------------------------------------------------
    @classmethod
    def isolation_plan(cls) -> IsolationPlan:
        try:
            mode = isolation.available()
        except ValueError as e:  # a bad MLGYM_ISOLATION
            raise SandboxError(str(e)) from None
        # the machine's best, whatever MLGYM_ISOLATION says
        return IsolationPlan(mode, forced=os.environ.get("MLGYM_ISOLATION") or None, machine_best=isolation.best())

    @classmethod
    def cleanup(cls, session: str | None, config: SandboxConfig) -> int:
        """The control groups (and the shells in them) of sandboxes whose process is gone: a killed
        worker's (with bubblewrap they die with the worker; without, they live on in its groups)."""
        return cgroup.sweep()

    @classmethod
    def links_readonly_data(cls) -> bool:
        return isolation.available() == "bwrap"  # bwrap mounts the data read-only

    # -- the shell ---------------------------------------------------------------------------------
    def _spawn(self) -> subprocess.Popen:
        readonly = [self.root / p for p in self.config.readonly if (self.root / p).exists()]
        argv = isolation.wrap(SHELL, mode=self._mode, cwd=Path(self._cwd),
                              writable=[self.root], readonly=readonly, hidden=self.config.hidden,
                              network=self.config.network, tmp_size_mb=isolation.tmp_mb(self.config.memory_mb))
        try:
            return subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=self._cwd, env=isolation.base_env(self.root, {**gpu_env(self.config), **self.config.env}),
                start_new_session=True, preexec_fn=isolation.limiter(self.config.memory_mb, self.config.file_size_mb,
                                                                        self.config.cpu_s, self._group),
            )
        except OSError as e:
            raise SandboxError(f"cannot start the local shell: {e}") from None

    def _stop_all(self) -> None:
        if self._proc is not None and not self._grouped_cpu:  # what the tree used, before it is killed
            self._cpu_gone += compute.tree_cpu_seconds(self._proc.pid)
        if self._group is not None:  # with bwrap, its whole PID namespace goes with the tree
            self._group.kill()

    def _reap(self) -> None:  # the killed count against its pids limit until they are reaped
        if self._group is not None:
            self._group.kill()

    def cpu_usage(self) -> tuple[float, CpuSource] | None:
        if self._grouped_cpu and self._group is not None and (used := self._group.cpu_seconds()) is not None:
            return used, "cgroup"
        live = compute.tree_cpu_seconds(self._proc.pid) if self._proc is not None else 0.0
        return self._cpu_gone + live, "process-tree"

    def _oom_kills(self) -> int:
        return self._group.oom_kills() if self._group is not None else 0

    def _disk_problem(self) -> str | None:
        return self.files.disk_problem()

    # -- files ---------------------------------------------------------------------------------------
    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        return self.files.read_file(path, max_bytes)

    def write_file(self, path: str, data: bytes) -> None:
        self.files.write_file(path, data)

    def copy_in(self, src: Path, dest: str) -> None:
        self.files.copy_in(src, dest)

    def copy_out(self, src: str, dest: Path, max_bytes: int = MAX_COPY_OUT) -> None:
        self.files.copy_out(src, dest, max_bytes)

    def close(self) -> None:
        super().close()
        if self._group is not None:
            self._group.remove()
            self._group = None
