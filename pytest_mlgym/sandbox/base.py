"""The sandbox base class: the six operations every backend implements, and the lifecycle and
capabilities the engine reads from it, for a shipped backend and a plugin's alike.

The engine never asks which backend it has: it calls :meth:`Sandbox.check` before a session,
:meth:`Sandbox.cleanup` after one (and for ``--mlgym-cleanup``), :meth:`Sandbox.open` per episode,
and reads the instance's declared attributes (``isolation``, ``host``, ``files_local``) and
:meth:`Sandbox.evaluator_engine`. A backend that overrides nothing of the lifecycle gets the
defaults: no preflight check, nothing to clean up, its evaluator isolated on this host.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..compute import CpuSource, Machine, this_machine


@dataclass(frozen=True)
class ExecResult:
    returncode: int | None  # None when the command was killed (timeout) or the shell died
    output: str  # stdout and stderr interleaved, truncated with a marker if too long
    timed_out: bool = False


@dataclass(frozen=True)
class DockerOptions:
    """The docker backend's session options (``--docker-host``, ``--docker-image``)."""

    hosts: tuple[str, ...] = ()  # engines to spread episodes over; none: DOCKER_HOST or the default socket
    image: str | None = None  # a self-contained image; None: one built offline that mounts this host's Python
    bind: bool = False  # a tcp:// engine on this machine: bind-mount workspaces as for a unix socket


@dataclass(frozen=True)
class SandboxConfig:
    """What a backend needs to start an episode's sandbox: the task's limits and the session's options."""

    memory_mb: int = 4096
    file_size_mb: int = 2048
    disk_mb: int = 20480  # what the workspace may hold (read-only data folders not counted)
    cpu_s: float = 3600  # CPU seconds per process
    output_chars: int = 20_000
    network: bool = False
    readonly: tuple[str, ...] = ()  # workspace-relative paths the agent may read but not change
    hidden: tuple[Path, ...] = ()  # host paths the agent must not see (task folders, caches)
    env: dict[str, str] = field(default_factory=dict)
    cpus: float | None = None  # CPU cores (docker; the local backend has no such limit)
    pids: int = 512  # processes and threads at once (docker; locally through a control group, where one can be made)
    gpus: tuple[str, ...] = ()  # GPU ids this sandbox may use (CUDA_VISIBLE_DEVICES locally, device requests in docker)
    docker: DockerOptions = DockerOptions()
    extra: dict[str, Any] = field(default_factory=dict)  # a plugin backend's own options, by its own keys


class SandboxError(Exception):
    """A sandbox could not start or an operation on it failed; one-line message."""


@dataclass(frozen=True)
class IsolationPlan:
    """What a backend's sandboxes will guarantee in this session, known before one starts:
    ``mode`` (None: not known, a plugin's), the variable that ``forced`` a weaker one, and the
    best this machine gives (``machine_best``), for the lines that warn or refuse."""

    mode: str | None
    forced: str | None = None
    machine_best: str | None = None


class EvaluatorEngine(Protocol):
    """Where a sandbox places its evaluator, when not on this host (``Sandbox.evaluator_engine``): it
    runs the trusted evaluator in a container of its own, and agent code the evaluator calls in another."""

    def run_trusted(self, argv: list[str], *, cwd: Path, env: dict[str, str], readonly: list[Path],
                    memory_mb: int, timeout: float) -> tuple[int | None, str, str]: ...

    def start_code(self, broker: Any, src: Path, seed: int) -> Any: ...


class Sandbox(abc.ABC):
    """One episode's sandbox: one persistent shell (``cd`` and variables persist), output capped with
    a marker, a timed-out command killed with everything it started, files only inside ``workdir``."""

    workdir: str  # the workspace as the agent sees it
    isolation: str | None = None  # how it is isolated, recorded with every result (e.g. "bwrap", "docker")
    host: str | None = None  # the engine it runs on, recorded with every result; None: this machine
    files_local: bool = True  # ``workdir`` is a folder of this machine the harness may read (hashing, linking)

    # -- lifecycle: called by the engine for whatever backend a session uses -----------------------
    @classmethod
    def open(cls, workdir: Path, config: SandboxConfig) -> "Sandbox":
        """Start a sandbox over the host folder ``workdir`` (the workspace, already filled)."""
        return cls(workdir, config)  # type: ignore[call-arg]

    @classmethod
    def check(cls, config: SandboxConfig) -> None:
        """Preflight, before a session runs anything: raise a one-line SandboxError when sandboxes of
        this backend cannot start here. The default: nothing to check."""
        return None

    @classmethod
    def cleanup(cls, session: str | None, config: SandboxConfig) -> int:
        """Remove what sandboxes left behind: those of ``session`` (at its end, also after a crash of
        one of its workers), or with ``session=None`` those of sessions whose process is gone.
        Returns how many things were removed."""
        return 0

    @classmethod
    def isolation_plan(cls) -> IsolationPlan:
        """What this backend's sandboxes will guarantee in this session (raises SandboxError when its
        configuration is wrong)."""
        return IsolationPlan(None)

    @classmethod
    def placement(cls, config: SandboxConfig) -> str:
        """Where this backend's sandboxes run, for the session's header ("": nothing to say)."""
        return ""

    @classmethod
    def links_readonly_data(cls) -> bool:
        """Whether the workspace's read-only data may be hard-linked to the prepared copy (the sandbox
        mounts it read-only, so the agent cannot change the shared files), not copied."""
        return False

    def evaluator_engine(self) -> EvaluatorEngine | None:
        """Where the evaluator scores this sandbox's artefact: None, isolated on this host; else the
        engine (e.g. ``pytest_mlgym.sandbox.docker.Engine``) whose own containers score it, never the
        agent's sandbox."""
        return None

    # -- compute metadata: what the run record says about the machine and its use -----------------
    def machine(self) -> Machine:
        """The hardware this sandbox runs on (the default: this machine)."""
        return this_machine()

    def cpu_usage(self) -> tuple[float, CpuSource] | None:
        """CPU seconds (user + system) of everything run in the sandbox so far, measured from outside
        it, and how (``pytest_mlgym.compute``); None where the backend does not measure it."""
        return None

    # -- what an episode does with it ---------------------------------------------------------------
    @property
    def cwd(self) -> str:
        """The shell's current folder after the last command (``workdir`` where a backend does not track it)."""
        return self.workdir

    @abc.abstractmethod
    def exec(self, cmd: str, timeout: float) -> ExecResult: ...

    @abc.abstractmethod
    def read_file(self, path: str, max_bytes: int | None = None) -> bytes: ...

    @abc.abstractmethod
    def write_file(self, path: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def copy_in(self, src: Path, dest: str) -> None: ...

    @abc.abstractmethod
    def copy_out(self, src: str, dest: Path) -> None: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Stop everything the sandbox started and release what it holds (idempotent)."""

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def gpu_env(config: SandboxConfig) -> dict[str, str]:
    """The variables that restrict a sandbox to its GPUs (none given: the host's defaults)."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(config.gpus)} if config.gpus else {}


def truncate(text: str, limit: int) -> str:
    """Keep the head and tail of ``text`` with a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    head, tail = limit // 2, limit - limit // 2
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters truncated ...]\n{text[-tail:]}"
