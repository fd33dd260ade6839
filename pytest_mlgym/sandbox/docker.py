"""The Docker backend: one container per episode on a Docker Engine, through the ``docker`` SDK.

The container runs a reaping ``bash`` as PID 1 with no network (unless the task asks), memory
and swap, pids, CPU and file-size limits, a read-only root, no capabilities,
``no-new-privileges``, and a non-root user. On an engine of this machine the workspace is
bind-mounted at its host path (the task's data read-only on top) with the host's Python prefix
read-only, so the task stack needs no registry; a remote engine (tcp://, ssh://) gets a copy of
the workspace in a volume (``docker_remote``) and a self-contained image. Nothing else of the host
is there: task folders are hidden by construction. The shell is one long-lived
``docker exec -i ... bash`` driven exactly like the local one (markers, streaming cap, timeouts);
a timeout kills every process in the container but PID 1, from the host's side of its cgroup.
Containers carry the session's labels and are removed at close and at session end.
"""
from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from filelock import FileLock

from . import SandboxConfig, SandboxError, cgroup, gpu_env, isolation
from . import docker_remote as remote
from .docker_image import UID, custom_image, ensure_image
from .docker_masks import image_masks, mask_mounts  # mask_mounts: also for other containers (runner.py)
from .local import SHELL, LocalSandbox

# PID 1: a bash that only waits, so it reaps every orphan (a plain `sleep` would leave killed
# processes as zombies that keep counting against the pids limit)
INIT = ["bash", "-c", "trap 'exit 0' TERM; while :; do sleep 86400 & wait $!; done"]
LABEL = "mlgym.session"  # every container carries its pytest session's id (MLGYM_SESSION_ID)
OWNER = "mlgym.owner"  # host:pid of the process that owns the session
ROLE = "mlgym.role"  # "evaluator" for the containers that score artefacts
REMOTE_WORKDIR = "/workspace"  # where a remote engine's container keeps the workspace (a volume)


def hosts() -> list[str | None]:
    """The engines to spread episodes over: ``--docker-host`` (MLGYM_DOCKER_HOSTS), else
    DOCKER_HOST or the default socket (None)."""
    given = [h for h in os.environ.get("MLGYM_DOCKER_HOSTS", "").split(",") if h]
    return given or [os.environ.get("DOCKER_HOST") or None]


@functools.cache
def _client(url: str | None = None):
    try:
        import docker
    except ImportError:
        raise SandboxError("the docker SDK is not installed (pip install docker)") from None
    where = url or os.environ.get("DOCKER_HOST") or "the default socket"
    for attempt in range(3):  # an engine under load can miss one call
        try:  # from_env, so that DOCKER_TLS_VERIFY / DOCKER_CERT_PATH apply to tcp:// hosts too
            client = docker.from_env(timeout=120, environment={**os.environ, **({"DOCKER_HOST": url} if url else {})},
                                     use_ssh_client=bool(url and url.startswith("ssh://")))
            client.ping()
            return client
        except Exception as e:  # noqa: BLE001 - every way of not reaching an engine is one message
            error = e
            time.sleep(attempt + 1)
    why = " ".join(str(error).split())[:160]
    raise SandboxError(f"no Docker Engine answers at {where} ({type(error).__name__}: {why}); "
                       f"start one (bash docker/start-engine) or set DOCKER_HOST") from None


def _least_busy() -> tuple[str | None, object]:
    """The engine running the fewest containers now (the first of equals): one scheduler rule."""
    best = None
    for url in hosts():
        client = _client(url)
        busy = len(client.containers.list(filters={"status": "running"}))
        if best is None or busy < best[0]:
            best = (busy, url, client)
    return best[1], best[2]


def _network(client) -> str:
    """For a task that asks for network: the engine's bridge, or the host's network where there is no
    bridge (a daemon started with --bridge=none)."""
    return "bridge" if client.networks.list(names=["bridge"]) else "host"


def is_remote(url: str | None) -> bool:
    """An engine that cannot see this machine's files (tcp://, ssh://): workspaces are copied."""
    return bool(url) and not url.startswith(("unix://", "npipe://")) and os.environ.get("MLGYM_DOCKER_BIND") != "1"


def check() -> None:
    for url in hosts():
        if is_remote(url) and not custom_image():
            raise SandboxError(f"the engine at {url} is remote: it cannot mount this host's Python, which the default "
                               f"image uses; give --docker-image (a self-contained image, docker/Dockerfile)")
        ensure_image(_client(url))


class DockerSandbox(LocalSandbox):
    own_group = False  # the container's cgroup limits and lists its processes
    kind = "container"

    def __init__(self, workdir: Path, config: SandboxConfig):
        self.container = None
        root = Path(workdir).resolve()
        python = "" if custom_image() else f"{Path(sys.executable).parent}:"
        import docker

        lock = FileLock(str(Path(tempfile.gettempdir()) / "mlgym-docker-schedule.lock"))
        try:
            with lock:  # choose and start under one lock, so parallel workers see each other's containers
                self.host, self.client = _least_busy()
                self.remote = is_remote(self.host)
                inside = Path(REMOTE_WORKDIR) if self.remote else root
                self.env = {"PATH": f"{'' if self.remote else python}/usr/local/bin:/usr/bin:/bin",
                            "HOME": str(inside), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
                            **gpu_env(config), **config.env}
                if self.remote:  # the engine cannot see this machine's files: the workspace is a volume
                    volumes, mounts = {}, [docker.types.Mount(REMOTE_WORKDIR, None, type="volume")]
                else:
                    self._own(root, config)
                    volumes, mounts = self._binds(root, config, python), []
                # config.hidden (task folders, the cache, package data with answers) masked in the container too
                if custom_image():  # the image's own Python: mask its copy of the hidden package data
                    masks, more = image_masks(self.client, ensure_image(self.client), config.hidden)
                    mounts += more
                else:
                    masks, binds = mask_mounts(config.hidden, [Path(v) for v in volumes])
                    volumes.update(binds)
                self.container = self.client.containers.create(
                    ensure_image(self.client), INIT, labels=labels(),
                    network_mode=_network(self.client) if config.network else "none", user=f"{UID}:{UID}",
                    working_dir=str(inside), mem_limit=f"{config.memory_mb}m", memswap_limit=f"{config.memory_mb}m",
                    pids_limit=config.pids, nano_cpus=int(config.cpus * 1e9) if config.cpus else None,
                    read_only=True, tmpfs={"/tmp": f"rw,exec,size={isolation.tmp_mb(config.memory_mb)}m", **masks}, cap_drop=["ALL"],
                    security_opt=["no-new-privileges"], volumes=volumes, mounts=mounts, environment=self.env,
                    init=False, ulimits=[docker.types.Ulimit(name="fsize", soft=config.file_size_mb << 20,
                                                             hard=config.file_size_mb << 20)],
                    device_requests=[docker.types.DeviceRequest(device_ids=list(config.gpus), capabilities=[["gpu"]])]
                    if config.gpus else None)
                self.container.start()
            if self.remote:
                remote.upload(self.container, root, inside, readonly=config.readonly)
        except Exception as e:  # noqa: BLE001 - a container that was made but cannot run is not left behind
            if self.container is not None:
                self.container.remove(force=True)
                self.container = None
            if isinstance(e, SandboxError):
                raise
            raise SandboxError(f"cannot start a container: {' '.join(str(e).split())[:300]}") from None
        self.container.reload()
        self.init_pid = int(self.container.attrs["State"]["Pid"])  # PID 1, as the host sees it
        self.checks_disk = not self.remote  # a remote workspace lives in the engine's volume, not here
        super().__init__(inside, config)
        self.isolation = "docker"

    @staticmethod
    def _binds(root: Path, config: SandboxConfig, python: str) -> dict:
        """Bind mounts for an engine on this machine: the workspace, its read-only paths, the Python."""
        binds = {str(root): {"bind": str(root), "mode": "rw"}}
        for p in config.readonly:
            if (root / p).exists():
                binds[str(root / p)] = {"bind": str(root / p), "mode": "ro"}
        if python:  # the host's Python stack, read-only, in the image built without one
            for prefix in {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}:
                binds[str(prefix)] = {"bind": str(prefix), "mode": "ro"}
        return binds

    @staticmethod
    def _own(root: Path, config: SandboxConfig) -> None:
        """The container's user owns the workspace; read-only paths stay the harness's."""
        ro = [root / p for p in config.readonly]
        for dirpath, dirnames, filenames in os.walk(root):
            d = Path(dirpath)
            if any(d == r or d.is_relative_to(r) for r in ro):
                dirnames[:] = []
                continue
            os.lchown(d, UID, UID)
            for name in filenames:
                if not any((d / name) == r for r in ro):
                    os.lchown(d / name, UID, UID)

    # -- files: on a remote engine through the archive API; here, as the harness, owned by the user ----
    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        if self.remote:
            return remote.read_file(self, path, max_bytes)
        return super().read_file(path, max_bytes)

    def copy_out(self, src: str, dest: Path, max_bytes: int = remote.MAX_COPY_OUT) -> None:
        if self.remote:
            return remote.copy_out(self, src, Path(dest), max_bytes)
        return super().copy_out(src, dest, max_bytes)

    def write_file(self, path: str, data: bytes) -> None:
        if self.remote:
            return remote.write_file(self, path, data)
        super().write_file(path, data)
        p = self._inside(path)
        for d in [p, *p.parents]:
            if d == self.root or not d.is_relative_to(self.root):
                break
            os.lchown(d, UID, UID)  # the file and any folder made for it

    def copy_in(self, src: Path, dest: str) -> None:
        if self.remote:
            return remote.copy_in(self, Path(src), dest)
        super().copy_in(src, dest)
        self._own(self._inside(dest), self.config)

    # -- the shell: a long-lived `docker exec -i` ---------------------------------------------
    def _start(self) -> None:
        argv = ["docker", *(["-H", self.host] if self.host else []), "exec", "-i", "-u", f"{UID}:{UID}", "-w", self._cwd,
                *[a for k, v in self.env.items() for a in ("-e", f"{k}={v}")],
                # stderr joins stdout inside the container (SHELL): docker's two streams would lose their order
                self.container.id, *SHELL]
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            raise SandboxError(f"cannot start the container's shell: {e}") from None
        self._send(self._prelude)

    def _kill(self) -> int | None:
        """Kill every process in the container but PID 1, then the ``docker exec`` client."""
        if self.container is not None and self._proc is not None:
            self._kill_all()
        return super()._kill()

    def _kill_all(self) -> None:
        """From the host (a fork bomb leaves no room to exec anything inside): stop every process of
        the container's cgroup but its init, so none can fork away, then kill them all."""
        cid = self.container.id
        procs = [f"/sys/fs/cgroup/{c}/docker/{cid}/cgroup.procs" for c in ("pids", "memory", "cpu")]
        procs += [f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cgroup.procs", f"/sys/fs/cgroup/docker/{cid}/cgroup.procs"]
        path = next((p for p in procs if os.path.exists(p)), None)
        if path is None:  # no cgroup visible from here (a remote engine): ask the container itself
            try:
                self.container.exec_run(["bash", "-c", "kill -9 -1"], user=f"{UID}:{UID}")
            except Exception:  # noqa: BLE001 - the container may be gone already
                pass
            return
        procs = lambda: {int(x) for x in Path(path).read_text().split()} - {self.init_pid}  # noqa: E731
        cgroup.kill_all(procs)
        cgroup.settle(Path(path).parent, procs)

    def exec(self, cmd: str, timeout: float):
        if self.container is None:
            raise SandboxError("the sandbox is closed")
        return super().exec(cmd, timeout)

    def _oom_kills(self) -> int:
        """How many processes the kernel killed for memory in this container (cgroup v1 or v2)."""
        for path in (f"/sys/fs/cgroup/memory/docker/{self.container.id}/memory.oom_control",
                     f"/sys/fs/cgroup/system.slice/docker-{self.container.id}.scope/memory.events",
                     f"/sys/fs/cgroup/docker/{self.container.id}/memory.events"):
            try:
                for line in Path(path).read_text().splitlines():
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
            except (OSError, ValueError):
                continue
        return 0

    def close(self) -> None:
        super().close()
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
            self.container = None


def run_trusted(client, argv: list[str], *, cwd: Path, env: dict[str, str], readonly: list[Path],
                memory_mb: int, timeout: float) -> tuple[int | None, str, str]:
    """Run trusted code (an evaluator) in a fresh container of its own on ``client``'s engine: no
    network, ``cwd`` writable, ``readonly`` folders and the Python stack read-only, nothing else.
    Returns (exit code or None on timeout, stdout, stderr); the container is removed."""
    import docker

    DockerSandbox._own(cwd, SandboxConfig())
    mounts = {str(cwd): {"bind": str(cwd), "mode": "rw"}}
    if custom_image():  # the image has its own Python and this package
        argv = ["python", *argv[1:]]
        env = {**env, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    for p in [*readonly, *([] if custom_image() else isolation.python_roots())]:
        if p.exists() and not any(p.is_relative_to(m) for m in map(Path, mounts)):
            mounts[str(p)] = {"bind": str(p), "mode": "ro"}
    container = client.containers.run(
        ensure_image(client), argv, detach=True, labels={**labels(), ROLE: "evaluator"}, network_mode="none",
        user=f"{UID}:{UID}", working_dir=str(cwd), environment=env, volumes=mounts, read_only=True,
        tmpfs={"/tmp": "rw,size=1g"}, cap_drop=["ALL"], security_opt=["no-new-privileges"],
        mem_limit=f"{memory_mb}m", memswap_limit=f"{memory_mb}m", pids_limit=512,
        ulimits=[docker.types.Ulimit(name="fsize", soft=2 << 30, hard=2 << 30)])
    try:
        try:
            code = container.wait(timeout=timeout)["StatusCode"]
        except Exception:  # noqa: BLE001 - the engine's read timed out: the evaluator ran too long
            return None, "", ""
        out = container.logs(stdout=True, stderr=False).decode(errors="replace")
        err = container.logs(stdout=False, stderr=True).decode(errors="replace")
        return code, out, err
    finally:
        container.remove(force=True)


def labels() -> dict[str, str]:
    """The session's id, and the process that owns the session (to tell leftovers from live runs)."""
    owner = os.environ.get("MLGYM_SESSION_OWNER") or str(os.getpid())
    return {LABEL: os.environ.get("MLGYM_SESSION_ID") or f"interactive-{owner}", OWNER: f"{socket.gethostname()}:{owner}"}


def cleanup(session: str | None = None, client=None) -> int:
    """Remove this session's containers, or (``session=None``) those whose owning process on this
    host is gone: the leftovers of crashed sessions. Returns how many were removed."""
    found = [c for client in ([client] if client else [_client(url) for url in hosts()])
             for c in client.containers.list(all=True, filters={"label": f"{LABEL}={session}" if session else LABEL})]
    removed = 0
    for c in found:
        host, _, pid = c.labels.get(OWNER, ":").partition(":")
        if session is None and host == socket.gethostname() and pid.isdigit() and _alive(int(pid)):
            continue  # a live session's container
        c.remove(force=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
