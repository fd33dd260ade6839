"""What the two docker backends share: one container per episode, its shell, its limits, its end.

The container runs a reaping ``bash`` as PID 1 with no network (unless the task asks), memory
and swap, pids, CPU and file-size limits, a read-only root, no capabilities,
``no-new-privileges``, and a non-root user. Where the workspace is (bind-mounted, or a volume on
a remote engine) is the subclass's: :class:`~.bound.DockerSandbox`, :class:`~.remote.RemoteDockerSandbox`.
Nothing else of the host is there: task folders are hidden by construction. The shell is one
long-lived ``docker exec -i ... bash`` driven exactly like the local one (``shell.py``); a timeout
kills every process in the container but PID 1, from the host's side of its cgroup. Containers
carry the session's labels and are removed at close and at session end.
"""
from __future__ import annotations

import abc
import os
import subprocess
import sys
from pathlib import Path

from ...compute import CpuSource
from .. import cgroup, isolation
from ..base import IsolationPlan, SandboxConfig, SandboxError, gpu_env
from ..shell import SHELL, ShellSandbox
from . import engine as engines
from .image import UID, ensure_image
from .masks import image_masks, mask_mounts

# PID 1: a bash that only waits, so it reaps every orphan (a plain `sleep` would leave killed
# processes as zombies that keep counting against the pids limit)
INIT = ["bash", "-c", "trap 'exit 0' TERM; while :; do sleep 86400 & wait $!; done"]

# where a container's CPU time shows on the engine's host (cgroup v1, v2 under systemd, v2), and its unit
CPU_FILES = (("/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e9),
             ("/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e6),
             ("/sys/fs/cgroup/docker/{cid}/cpu.stat", 1e6))


class ContainerSandbox(ShellSandbox):
    """The ``docker`` backend: opening one places it on the least busy engine and makes the
    sandbox that engine can serve (bind-mounted on this machine's engines, copied to remote ones)."""

    kind = "container"
    isolation = "docker"
    container = None

    @classmethod
    def open(cls, workdir: Path, config: SandboxConfig) -> "ContainerSandbox":
        if cls is not ContainerSandbox:
            return cls(workdir, config)
        from .bound import DockerSandbox
        from .remote import RemoteDockerSandbox
        with engines.placement(config.docker) as engine:
            kind = RemoteDockerSandbox if engines.is_remote(engine.url, config.docker) else DockerSandbox
            sb = kind(workdir, config, engine=engine)
        sb._ready()
        return sb

    # -- lifecycle ---------------------------------------------------------------------------------
    @classmethod
    def check(cls, config: SandboxConfig) -> None:
        options = config.docker
        for url in engines.hosts(options):
            if engines.is_remote(url, options) and not options.image:
                raise SandboxError(f"the engine at {url} is remote: it cannot mount this host's Python, which the "
                                   f"default image uses; give --docker-image (a self-contained image, "
                                   f"docker/Dockerfile)")
            ensure_image(engines._client(url), options.image)

    @classmethod
    def cleanup(cls, session: str | None, config: SandboxConfig) -> int:
        return engines.cleanup(session, config.docker)

    @classmethod
    def isolation_plan(cls) -> IsolationPlan:
        return IsolationPlan("docker")

    @classmethod
    def placement(cls, config: SandboxConfig) -> str:
        return f" on {', '.join(config.docker.hosts)}" if config.docker.hosts else ""

    # -- the container -------------------------------------------------------------------------------
    def __init__(self, workdir: Path, config: SandboxConfig, engine: engines.Engine | None = None):
        """Start the container on ``engine`` (the caller holds ``engines.placement`` and then calls
        ``_ready``), or, with none, on one placed here."""
        self.container = None
        if engine is None:
            with engines.placement(config.docker) as engine:
                self._launch(Path(workdir).resolve(), config, engine)
            self._ready()
        else:
            self._launch(Path(workdir).resolve(), config, engine)

    @abc.abstractmethod
    def _workspace(self, root: Path, config: SandboxConfig, python: str) -> tuple[Path, dict, list]:
        """Where the workspace is in the container, and the (volumes, mounts) that put it there."""

    def _populate(self, root: Path) -> None:
        """Once the container runs: fill its workspace (a copy, where it is not mounted)."""

    def _path(self, python: str) -> str:
        return f"{python}/usr/local/bin:/usr/bin:/bin"

    def _launch(self, root: Path, config: SandboxConfig, engine: engines.Engine) -> None:
        import docker.types

        self.engine, self.host, self.client, self._root_on_host = engine, engine.url, engine.client, root
        python = "" if engine.image else f"{Path(sys.executable).parent}:"
        try:
            inside, volumes, mounts = self._workspace(root, config, python)
            self.env = {"PATH": self._path(python), "HOME": str(inside), "LANG": "C.UTF-8",
                        "PYTHONDONTWRITEBYTECODE": "1", **gpu_env(config), **config.env}
            image = ensure_image(self.client, engine.image)
            # config.hidden (task folders, the cache, package data with answers) masked in the container too
            if engine.image:  # the image's own Python: mask its copy of the hidden package data
                masks, more = image_masks(self.client, image, config.hidden)
                mounts += more
            else:
                masks, binds = mask_mounts(config.hidden, [Path(v) for v in volumes])
                volumes.update(binds)
            self.container = self.client.containers.create(
                image, INIT, labels=engines.labels(),
                network_mode=engines.network(self.client) if config.network else "none", user=f"{UID}:{UID}",
                working_dir=str(inside), mem_limit=f"{config.memory_mb}m", memswap_limit=f"{config.memory_mb}m",
                pids_limit=config.pids, nano_cpus=int(config.cpus * 1e9) if config.cpus else None, read_only=True,
                tmpfs={"/tmp": f"rw,exec,size={isolation.tmp_mb(config.memory_mb)}m", **masks}, cap_drop=["ALL"],
                security_opt=["no-new-privileges"], volumes=volumes, mounts=mounts, environment=self.env,
                init=False, ulimits=[docker.types.Ulimit(name="fsize", soft=config.file_size_mb << 20,
                                                         hard=config.file_size_mb << 20)],
                device_requests=[docker.types.DeviceRequest(device_ids=list(config.gpus), capabilities=[["gpu"]])]
                if config.gpus else None)
            self.container.start()
        except Exception as e:  # a container that was made but cannot run is not left behind
            self._failed(e)
        ShellSandbox.__init__(self, str(inside), config)
        self.root = inside

    def _failed(self, e: Exception):
        if self.container is not None:
            self.container.remove(force=True)
            self.container = None
        if isinstance(e, SandboxError):
            raise e
        raise SandboxError(f"cannot start a container: {' '.join(str(e).split())[:300]}") from None

    def _live(self):
        """The episode's container (it is open)."""
        if self.container is None:
            raise SandboxError("the sandbox is closed")
        return self.container

    def _ready(self) -> None:
        """After the placement lock: fill the workspace, then start the shell."""
        try:
            self._populate(self._root_on_host)
        except Exception as e:
            self._failed(e)
        container = self._live()
        container.reload()
        self.init_pid = int(container.attrs["State"]["Pid"])  # PID 1, as the host sees it
        self._start()

    # -- the shell: a long-lived `docker exec -i` ---------------------------------------------
    def _spawn(self) -> subprocess.Popen:
        argv = ["docker", *(["-H", self.host] if self.host else []), "exec", "-i", "-u", f"{UID}:{UID}",
                "-w", self._cwd,
                *[a for k, v in self.env.items() for a in ("-e", f"{k}={v}")],
                # stderr joins stdout inside the container (SHELL): docker's two streams would lose their order
                self._live().id, *SHELL]
        try:
            return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            raise SandboxError(f"cannot start the container's shell: {e}") from None

    def _stop_all(self) -> None:
        """From the host (a fork bomb leaves no room to exec anything inside): stop every process of
        the container's cgroup but its init, so none can fork away, then kill them all."""
        if self.container is None:
            return
        cid = self.container.id
        files = [f"/sys/fs/cgroup/{c}/docker/{cid}/cgroup.procs" for c in ("pids", "memory", "cpu")]
        files += [f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cgroup.procs",
                  f"/sys/fs/cgroup/docker/{cid}/cgroup.procs"]
        path = next((p for p in files if os.path.exists(p)), None)
        if path is None:  # no cgroup visible from here (a remote engine): ask the container itself
            try:
                self.container.exec_run(["bash", "-c", "kill -9 -1"], user=f"{UID}:{UID}")
            except Exception:  # the container may be gone already
                pass
            return
        def procs() -> set[int]:
            return {int(x) for x in Path(path).read_text().split()} - {self.init_pid}
        cgroup.kill_all(procs)
        cgroup.settle(Path(path).parent, procs)

    def exec(self, cmd: str, timeout: float):
        if self.container is None:
            raise SandboxError("the sandbox is closed")
        return super().exec(cmd, timeout)

    def _oom_kills(self) -> int:
        """How many processes the kernel killed for memory in this container (cgroup v1 or v2)."""
        if self.container is None:
            return 0
        cid = self.container.id
        for path in (f"/sys/fs/cgroup/memory/docker/{cid}/memory.oom_control",
                     f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/memory.events",
                     f"/sys/fs/cgroup/docker/{cid}/memory.events"):
            try:
                for line in Path(path).read_text().splitlines():
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
            except (OSError, ValueError):
                continue
        return 0

    def cpu_usage(self) -> tuple[float, CpuSource] | None:
        """The container's cgroup CPU time: read on this host where it shows, else the engine's stats."""
        if self.container is None:
            return None
        for path, scale in CPU_FILES:
            try:
                text = Path(path.format(cid=self.container.id)).read_text().split()
                return int(text[text.index("usage_usec") + 1] if "usage_usec" in text else text[0]) / scale, "cgroup"
            except (OSError, ValueError, IndexError):
                continue
        try:  # a remote engine: its stats API reads the same cgroup counter on its host
            stats = self.container.stats(stream=False, one_shot=True)
            return int(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9, "cgroup"
        except Exception:  # an engine without stats for it (gone, too old)
            return None

    def close(self) -> None:
        super().close()
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except Exception:
                pass
            self.container = None
