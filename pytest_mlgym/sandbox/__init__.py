"""Sandboxes: where an agent's commands run. A base class, a registry, lazy backends.

Every backend subclasses :class:`Sandbox` (``base.py``): one persistent shell per episode (``cd``
and variables persist), output truncated with a marker, the whole process group of a command that
times out killed; its lifecycle (preflight ``check``, ``cleanup``, where its evaluator runs) is
declared on the class, so a backend a plugin adds is treated like a shipped one. Every backend
passes the contract suite shipped in :mod:`pytest_mlgym.testing.sandbox_contract` (subclass
``SandboxContract``, name the backend); the shipped ones also the longer ``tests/test_sandbox_contract.py``.

Shipped backends: ``local`` (``local.py``: bash under ``isolation.wrap``) and ``docker``
(``docker/``: a container per episode, its workspace bind-mounted on an engine of this machine, or
copied into a volume on a remote one).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from .base import (DockerOptions, EvaluatorEngine, ExecResult, IsolationPlan, Sandbox, SandboxConfig, SandboxError,
                   gpu_env, truncate)

__all__ = ["BACKENDS", "DockerOptions", "EvaluatorEngine", "ExecResult", "IsolationPlan", "Sandbox", "SandboxConfig",
           "SandboxError",
           "backend", "create", "gpu_env", "truncate"]

# name -> "module:Class" (a Sandbox subclass); plugins add more through the pytest_mlgym_sandboxes hook
# (a class, its "module:Class", or a factory(workdir, SandboxConfig) returning a Sandbox).
BACKENDS: dict[str, str | type[Sandbox] | Callable[..., Sandbox]] = {
    "local": "pytest_mlgym.sandbox.local:LocalSandbox",
    "docker": "pytest_mlgym.sandbox.docker:ContainerSandbox",
}


def backend(name: str) -> type[Sandbox]:
    """The class of the named backend, whose class methods are its lifecycle."""
    try:
        entry = BACKENDS[name]
    except KeyError:
        raise SandboxError(f"unknown sandbox '{name}'; choose from: {', '.join(BACKENDS)}") from None
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    if isinstance(entry, type) and issubclass(entry, Sandbox):
        return entry
    if callable(entry):  # a bare factory: the base class's lifecycle (nothing to check or clean up)
        return type(f"Factory[{name}]", (_Factory,), {"factory": staticmethod(entry)})
    raise SandboxError(f"sandbox '{name}': {entry!r} is neither a Sandbox subclass nor a factory")


class _Factory(Sandbox):
    """A backend given as a factory function: opening calls it; its result must be a Sandbox."""

    factory: Callable[..., Sandbox]

    @classmethod
    def open(cls, workdir: Path, config: SandboxConfig) -> Sandbox:
        sb = cls.factory(workdir, config)
        if not isinstance(sb, Sandbox):
            raise SandboxError(f"{cls.__name__} returned a {type(sb).__name__}, not a pytest_mlgym.sandbox.Sandbox")
        return sb


def create(name: str, workdir: Path, config: SandboxConfig) -> Sandbox:
    """Start a sandbox of the named backend over the host folder ``workdir``."""
    return backend(name).open(Path(workdir), config)
