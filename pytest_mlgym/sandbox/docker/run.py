"""The docker backend's half of :mod:`.runner`: agent code an evaluator calls, in a container of its
own on the episode's engine, joined to the evaluator through two FIFOs (a direct kernel pipe, no
``docker attach`` in between). No network, a read-only root, no capabilities, another user than
the agent's and the evaluator's containers, the task's memory and process limits, the task's
package data masked; its CPU time is read from the host's side of its cgroup.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .. import isolation
from ..runner import RUNNER_UID, Broker, Run, RunnerError
from . import masks as docker_masks
from .engine import ROLE, labels
from .image import ensure_image


class DockerRun(Run):
    """The code in a container of its own on the docker backend's engine, joined by two FIFOs."""

    def __init__(self, broker: Broker, src: Path, seed: int):
        super().__init__(broker, src, seed)
        self.container = None
        self.pipes = Path(tempfile.mkdtemp(prefix="mlgym-pipes-"))
        try:
            for name in ("in", "out"):
                os.mkfifo(self.pipes / name, 0o600)
                os.chown(self.pipes / name, RUNNER_UID, RUNNER_UID)
            os.chmod(self.pipes, 0o755)
            self.r: int | None = os.open(self.pipes / "out", os.O_RDONLY | os.O_NONBLOCK)
            self.w: int | None = None
            self.container = self._start()
            deadline = time.monotonic() + 120
            while self.w is None:  # the container's shell opens "out", then "in": then both are joined
                try:
                    self.w = os.open(self.pipes / "in", os.O_WRONLY | os.O_NONBLOCK)
                except OSError:
                    if time.monotonic() > deadline or self.poll() is not None:
                        raise RunnerError("the agent code's container did not start") from None
                    time.sleep(0.02)
        except Exception as e:
            self.kill()
            if isinstance(e, RunnerError):
                raise
            raise RunnerError(f"cannot start the agent code's container: {' '.join(str(e).split())[:200]}") from None

    def _start(self):
        """The container: the copied file, the child script and the Python stack read-only, the FIFOs'
        folder, a private /tmp; no network, no capabilities, another user, the task's limits."""
        import docker as sdk

        lim, engine = self.broker.limits, self.broker.engine
        custom, client = engine.image, engine.client
        python = "python" if custom else sys.executable
        mounts = {str(self.dir): {"bind": str(self.dir), "mode": "ro"},
                  str(self.pipes): {"bind": "/run/mlgym", "mode": "rw"}}
        if not custom:
            for root in isolation.python_roots():
                mounts[str(root)] = {"bind": str(root), "mode": "ro"}
        tmpfs = {"/tmp": f"rw,exec,size={isolation.tmp_mb(lim.memory_mb)}m"}
        extra: list = []  # the task's package data masked, as in the agent's container
        if custom:
            masks, extra = docker_masks.image_masks(client, ensure_image(client, custom),
                                                    self.broker.hidden)
        else:
            masks, binds = docker_masks.mask_mounts(self.broker.hidden, [Path(m) for m in mounts])
            mounts.update(binds)
        tmpfs.update(masks)
        env = {**self.env(), "PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin" if not custom
               else "/usr/local/bin:/usr/bin:/bin"}
        # bash opens "out" first (we already read it), then "in" (we open it last): then both are joined
        shell = ['bash', '-c', 'exec "$@" >/run/mlgym/out </run/mlgym/in', 'runner', *self.argv(python)]
        container = client.containers.create(
            ensure_image(client, custom), shell, labels={**labels(), ROLE: "runner"},
            network_mode="none", user=f"{RUNNER_UID}:{RUNNER_UID}", working_dir=str(self.code), environment=env,
            volumes=mounts, mounts=extra, read_only=True, tmpfs=tmpfs, cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=f"{lim.memory_mb}m", memswap_limit=f"{lim.memory_mb}m", pids_limit=lim.pids,
            ulimits=[sdk.types.Ulimit(name="fsize", soft=lim.file_size_mb << 20, hard=lim.file_size_mb << 20)])
        self.container = container
        container.start()
        return container

    def fds(self) -> tuple[int, int]:
        if self.w is None or self.r is None:
            raise RunnerError("the agent code's container is gone")
        return os.dup(self.w), os.dup(self.r)

    def _state(self) -> dict:
        try:
            assert self.container is not None
            self.container.reload()
            return self.container.attrs["State"]
        except Exception:  # gone
            return {"Running": False, "ExitCode": None}

    def alive(self) -> bool:
        return self.container is not None and bool(self._state().get("Running"))

    def poll(self) -> int | None:
        if self.container is None:
            return -9
        state = self._state()
        return None if state.get("Running") or state.get("Status") == "created" else state.get("ExitCode")

    def oom_killed(self) -> bool:
        return bool(self.container is not None and self._state().get("OOMKilled"))

    def cpu_seconds(self) -> float | None:
        """From the host's side of the container's cgroup (cgroup v1 cpuacct, or v2)."""
        if self.container is None:
            return None
        cid = self.container.id
        for path, scale in ((f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e9),
                            (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e6),
                            (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", 1e6)):
            try:
                text = Path(path).read_text().split()
            except OSError:
                continue
            return int(text[text.index("usage_usec") + 1] if "usage_usec" in text else text[0]) / scale
        return None

    def kill(self) -> None:
        for fd in (getattr(self, "r", None), getattr(self, "w", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.r = self.w = None
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except Exception:  # already gone
                pass
            self.container = None
        shutil.rmtree(self.pipes, ignore_errors=True)
        self.cleanup()
