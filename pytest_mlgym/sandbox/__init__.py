"""Sandboxes: where an agent's commands run. A small protocol, a registry, lazy backends.

Every backend keeps one persistent shell per episode (``cd`` and variables persist), truncates
output with a marker, kills the whole process group of a command that times out, and passes
the shared contract suite in ``tests/test_sandbox_contract.py``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable


@dataclass(frozen=True)
class ExecResult:
    returncode: int | None  # None when the command was killed (timeout) or the shell died
    output: str  # stdout and stderr interleaved, truncated with a marker if too long
    timed_out: bool = False


@dataclass(frozen=True)
class SandboxConfig:
    """What a backend needs to start an episode's sandbox."""

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


class SandboxError(Exception):
    """A sandbox could not start or an operation on it failed; one-line message."""


@runtime_checkable
class Sandbox(Protocol):
    workdir: str  # the workspace as the agent sees it
    isolation: str  # how it is isolated, recorded with every result (e.g. "bwrap", "none")

    def exec(self, cmd: str, timeout: float) -> ExecResult: ...
    def read_file(self, path: str, max_bytes: int | None = None) -> bytes: ...
    def write_file(self, path: str, data: bytes) -> None: ...
    def copy_in(self, src: Path, dest: str) -> None: ...
    def copy_out(self, src: str, dest: Path) -> None: ...
    def close(self) -> None: ...


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


# name -> "module:factory"; plugins add more through the pytest_mlgym_sandboxes hook.
BACKENDS: dict[str, str | Callable[..., Sandbox]] = {
    "local": "pytest_mlgym.sandbox.local:LocalSandbox",
    "docker": "pytest_mlgym.sandbox.docker:DockerSandbox",
}


def create(backend: str, workdir: Path, config: SandboxConfig) -> Sandbox:
    """Start a sandbox of the named backend over the host folder ``workdir``."""
    try:
        factory = BACKENDS[backend]
    except KeyError:
        raise SandboxError(f"unknown sandbox '{backend}'; choose from: {', '.join(BACKENDS)}") from None
    if isinstance(factory, str):
        module, _, name = factory.partition(":")
        factory = getattr(importlib.import_module(module), name)
    return factory(workdir, config)
