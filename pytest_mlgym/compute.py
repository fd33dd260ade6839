"""Compute metadata: the machine that ran an episode's sandbox and what the episode used of it.

Every run record carries a :class:`Compute`: the CPU model and cores of the machine the sandbox ran
on (this machine, or a remote Docker Engine's host), the GPU model and count when GPUs were given to
the episode, the sandbox's core-seconds, its GPU-seconds and the wall time, so results from
different machines are never compared blindly (:func:`hardware_note`).

Core-seconds are the CPU time (user + system) of everything the agent's commands ran in the
sandbox, measured by the harness from outside it, never reported by the agent:

- ``cgroup``: the sandbox's control group (cgroup v1 ``cpuacct.usage``, v2 ``cpu.stat``; a Docker
  container's, read on the engine's host or through the engine's stats API). It counts every process
  that ever ran in the group, also one that double-forked, detached with ``setsid``, or exited
  before the episode ended; a process cannot leave the group: bubblewrap shows ``/sys`` read-only
  and a container holds no capabilities. (A local sandbox without bubblewrap, as root, could write
  its way out: that isolation is reported as weaker than the machine's best, and trusted no further.)
- ``process-tree`` (no control group could be made here): the shell's process tree, live processes'
  own time plus their reaped children's, sampled whenever a shell is killed (a timeout, a restart)
  and at the end. Under bubblewrap the sandbox has its own PID namespace, whose init reaps (and so
  counts) orphans; without one, a daemonised child reparented to the host's init is not counted.

Not counted, anywhere: the harness itself, the trusted evaluator, and agent code the evaluator calls
while scoring (it runs in a sandbox of its own), and the harness's own probe of a new sandbox (read
before the agent's first command and subtracted). GPU-seconds are allocated, not measured: the
number of GPUs given to the episode times its wall time (``gpu_seconds_source = "allocated"``).
"""
from __future__ import annotations

import functools
import platform
import shutil
import subprocess
from collections.abc import Iterable
from typing import Literal

import psutil
from pydantic import BaseModel


CpuSource = Literal["cgroup", "process-tree"]  # how core-seconds were measured (see above)


class Machine(BaseModel):
    """The hardware a sandbox ran on (None: not known)."""

    cpu_model: str | None = None
    logical_cores: int | None = None
    physical_cores: int | None = None
    gpu_model: str | None = None  # of the GPUs given to the episode; None when none were
    gpu_count: int = 0


class Compute(Machine):
    """A run's compute: its machine, and what its sandbox used (default-constructible, so records
    written before it existed still read: their fields are all None)."""

    core_seconds: float | None = None
    core_seconds_source: CpuSource | None = None
    gpu_seconds: float | None = None
    gpu_seconds_source: Literal["allocated"] | None = None
    wall_s: float | None = None

    @property
    def hardware(self) -> str | None:
        """The kind of hardware, as one label (None: a record without compute metadata)."""
        if self.cpu_model is None and self.logical_cores is None:
            return None
        cpu = f"{self.cpu_model or 'unknown CPU'} x{self.logical_cores or '?'}"
        return f"{cpu}, {self.gpu_count} x {self.gpu_model or 'GPU'}" if self.gpu_count else cpu


def parse_cpuinfo(text: str) -> Machine:
    """CPU model and cores from ``/proc/cpuinfo`` text (x86: ``model name``; Arm: ``Model`` or
    ``CPU implementer``/``CPU part``)."""
    model, logical, cores = None, 0, set()
    physical = core = ""
    for line in text.splitlines():
        key, _, value = (s.strip() for s in line.partition(":"))
        if key == "processor":
            logical += 1
        elif key in ("model name", "Model", "Hardware") and model is None and value:
            model = value
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
            cores.add((physical, core))
    return Machine(cpu_model=model, logical_cores=logical or None, physical_cores=len(cores) or None)


@functools.cache
def this_machine() -> Machine:
    """This machine's CPU (probed once per process)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            info = parse_cpuinfo(f.read())
    except OSError:
        info = Machine()
    return Machine(cpu_model=info.cpu_model or platform.processor() or None,
                   logical_cores=psutil.cpu_count(logical=True), physical_cores=psutil.cpu_count(logical=False))


@functools.cache
def gpu_model(ids: tuple[str, ...]) -> str | None:
    """The model of the GPUs ``ids`` (nvidia-smi; None where it is absent or says nothing)."""
    if not ids or shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", f"--id={','.join(ids)}"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = sorted({n.strip() for n in out.splitlines() if n.strip()})
    return " + ".join(names) or None


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and all its descendants, live and reaped (user, system and their children's)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def of_episode(sandbox, gpus: tuple[str, ...], wall_s: float, cpu_at_start: tuple[float, str] | None) -> Compute:
    """The compute record of an episode whose sandbox is ``sandbox`` (still open; None: closed),
    given ``gpus``, that ran ``wall_s`` seconds; ``cpu_at_start``: the sandbox's CPU seconds before
    the agent's first command."""
    machine = sandbox.machine() if sandbox is not None else this_machine()
    used = sandbox.cpu_usage() if sandbox is not None else None
    core_s, source = (None, None) if used is None else used
    if core_s is not None and cpu_at_start is not None and cpu_at_start[1] == source:
        core_s = max(0.0, core_s - cpu_at_start[0])
    return Compute(**machine.model_dump(exclude={"gpu_model", "gpu_count"}),
                   gpu_model=gpu_model(tuple(gpus)) if gpus else None, gpu_count=len(gpus),
                   core_seconds=None if core_s is None else round(core_s, 3), core_seconds_source=source,
                   gpu_seconds=round(len(gpus) * wall_s, 3), gpu_seconds_source="allocated" if gpus else None,
                   wall_s=round(wall_s, 3))


def hardware_kinds(computes: Iterable[Compute]) -> list[str]:
    """The distinct kinds of hardware among ``computes`` (records without metadata left out)."""
    return sorted({h for c in computes if (h := c.hardware) is not None})


def hardware_note(ours: Iterable[Compute], theirs: Iterable[Compute]) -> str | None:
    """One line when two sets of runs come from different hardware (or one set from several kinds),
    None when they match; when one side's records hold no compute metadata (written before it
    existed) the line says so; when neither side's do, there is nothing to compare (None)."""
    ours, theirs = list(ours), list(theirs)
    a, b = hardware_kinds(ours), hardware_kinds(theirs)
    if not a and not b or not ours or not theirs:
        return None
    if not a or not b:
        return f"hardware not recorded for {'the stored run' if not b else 'this run'} (records older than " \
               f"compute metadata): the two may come from different machines"
    if a == b and len(a) == 1:
        return None
    return f"different hardware: this run on {' / '.join(a)}, the stored run on {' / '.join(b)}: " \
           f"scores, wall times and core-seconds may differ for that reason alone"
