"""A control group per local sandbox, where this process may make one (root, cgroup v1 or v2).

It gives the local backend four things rlimits cannot: a cap on the sandbox's processes and
threads together (a fork bomb stops at ``pids``), a cap on their memory together (many
processes, each under ``RLIMIT_AS``, cannot add up to the host's RAM), and the complete list of
its processes, so every one is killed, also one that double-forked and called ``setsid`` where
there is no PID namespace, and (where ``cpuacct`` or cgroup v2 counts it) the CPU time of all of them
together, detached ones included. Groups are made under this process's own group, so whatever limits
the harness runs under still hold; a group left by a crash is removed by the next sandbox.
"""
from __future__ import annotations

import functools
import os
import re
import signal
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path("/sys/fs/cgroup")
_OOM_KILL = re.compile(rb"^oom_kill (\d+)$", re.M)
PREFIX = "mlgym-"


@functools.cache
def available() -> bool:
    """Whether sandboxes here get a group of their own (probed once per process)."""
    group = Group.create(pids=16, memory_mb=64)
    if group is not None:
        group.remove()
    return group is not None


class Group:
    """The sandbox's group: one directory per controller (v1: pids and memory; v2: one)."""

    def __init__(self, dirs: dict[str, Path]):
        self.dirs = dirs  # controller ("pids", "memory", or "unified") -> its directory
        self._oom_fd: int | None = None  # kept open: a pread is 15x cheaper than opening it per command

    @classmethod
    def create(cls, pids: int, memory_mb: int) -> "Group | None":
        """A new group with these limits, or None where groups cannot be made here."""
        name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        sweep()  # groups left by processes that are gone go first
        dirs: dict[str, Path] = {}
        try:
            if (unified := _parent("")) is not None and (unified / "cgroup.subtree_control").exists() \
                    and {"pids", "memory"} <= set((unified / "cgroup.subtree_control").read_text().split()):
                dirs["unified"] = _make(unified / name)
                _write(dirs["unified"] / "pids.max", pids)
                _write(dirs["unified"] / "memory.max", memory_mb << 20)
                _write(dirs["unified"] / "memory.swap.max", 0, required=False)
            else:
                for ctrl in ("pids", "memory"):
                    parent = _parent(ctrl)
                    if parent is None:
                        raise OSError(f"no {ctrl} controller")
                    dirs[ctrl] = _make(parent / name)
                _write(dirs["pids"] / "pids.max", pids)
                _write(dirs["memory"] / "memory.limit_in_bytes", memory_mb << 20)
                _write(dirs["memory"] / "memory.memsw.limit_in_bytes", memory_mb << 20, required=False)
                if (acct := _parent("cpuacct")) is not None:  # CPU time of all its processes together
                    dirs["cpuacct"] = _make(acct / name)
        except OSError:
            Group(dirs).remove()
            return None
        return cls(dirs)

    def enter(self) -> None:
        """Move the calling process into the group (from a ``preexec_fn``, before ``exec``)."""
        for d in self.dirs.values():
            with open(d / "cgroup.procs", "w") as f:
                f.write("0")

    def procs(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs.values():
            try:
                out |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return out

    def kill(self) -> None:
        """Stop every process in the group (so none forks away) and kill them all."""
        kill_all(self.procs)
        d = self.dirs.get("pids") or self.dirs.get("unified")
        if d is not None:
            settle(d, self.procs)

    def cpu_seconds(self) -> float | None:
        """CPU time used by every process that ever ran in the group (None where it is not counted)."""
        try:
            if "cpuacct" in self.dirs:
                return int((self.dirs["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
            if "unified" in self.dirs:
                stat = (self.dirs["unified"] / "cpu.stat").read_text().split()
                return int(stat[stat.index("usage_usec") + 1]) / 1e6
        except (OSError, ValueError, IndexError):
            pass
        return None

    def oom_kills(self) -> int:
        """How many of the group's processes the kernel killed for memory (read before and after
        every command, so the file stays open)."""
        if self._oom_fd is None:
            d = self.dirs.get("memory") or self.dirs.get("unified")
            if d is None:
                return 0
            for name in ("memory.oom_control", "memory.events"):
                try:
                    self._oom_fd = os.open(d / name, os.O_RDONLY)  # not inherited by the sandbox (PEP 446)
                    break
                except (OSError, TypeError):
                    continue
            else:
                return 0
        try:
            found = _OOM_KILL.search(os.pread(self._oom_fd, 4096, 0))
        except OSError:
            return 0
        return int(found[1]) if found else 0

    def remove(self) -> None:
        """Kill what is left and remove the directories (a group is removable once it is empty)."""
        if self._oom_fd is not None:
            os.close(self._oom_fd)
            self._oom_fd = None
        self.kill()
        for d in self.dirs.values():
            _rmdir(d)


def kill_all(procs) -> None:
    """SIGSTOP every pid ``procs()`` lists until no new one appears, then SIGKILL them all."""
    seen: set[int] = set()
    for _ in range(20):
        try:
            new = procs() - seen
        except (OSError, ValueError):  # the group is gone
            break
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        seen |= new
    for pid in seen:
        _signal(pid, signal.SIGKILL)


def settle(d: Path, procs, wait: float = 2.0) -> None:
    """Killed processes count against the pids limit until they are reaped (by the host's init, on
    its own time): wait, for a while, until a group left crowded (a fork bomb) has room again."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            if int((d / "pids.current").read_text()) * 2 < int((d / "pids.max").read_text()):
                return
        except (OSError, ValueError):  # no such files, or "max": no limit
            return
        kill_all(procs)
        time.sleep(0.01)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _parent(controller: str) -> Path | None:
    """This process's own group directory for ``controller`` ("" for the v2 unified hierarchy)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if (controller in ctrls.split(",")) if controller else not ctrls:
            base = ROOT / controller if controller else (ROOT / "unified" if (ROOT / "unified").is_dir() else ROOT)
            d = base / path.lstrip("/")
            return d if os.access(d, os.W_OK) else None
    return None


def sweep() -> int:
    """Remove the groups whose owner process is gone (a killed xdist worker's sandboxes, say), with
    everything still running in them; returns how many were removed."""
    removed = 0
    for parent in {p for c in ("pids", "memory", "cpuacct", "") if (p := _parent(c)) is not None}:
        for stale in parent.glob(f"{PREFIX}*"):
            pid = stale.name[len(PREFIX):].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                _rmdir(stale)
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:  # a zombie (an owner killed, not yet reaped) is gone too
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _make(d: Path) -> Path:
    d.mkdir()
    return d


def _write(path: Path, value: int, required: bool = True) -> None:
    try:
        path.write_text(str(value))
    except OSError:
        if required:
            raise


def _rmdir(d: Path) -> None:
    for _ in range(50):  # killed processes leave the group once the kernel has reaped them
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            kill_all(lambda: {int(p) for p in (d / "cgroup.procs").read_text().split()})
            time.sleep(0.02)
