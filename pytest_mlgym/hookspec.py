"""The plugin's own hooks, so other plugins can add task folders, agents, policies and sandboxes."""
from __future__ import annotations

import pluggy
import pytest

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_mlgym_task_dirs(config: pytest.Config):
    """Return a list of folders holding ``<id>/task.yaml`` task folders to add to the benchmark."""


@hookspec
def pytest_mlgym_agent_dirs(config: pytest.Config):
    """Return a list of folders holding ``NAME.yaml`` agent definitions."""


@hookspec
def pytest_mlgym_policies(config: pytest.Config):
    """Return ``{policy name: "module:Class"}`` for extra agent policies."""


@hookspec
def pytest_mlgym_sandboxes(config: pytest.Config):
    """Return ``{backend name: a Sandbox subclass, its "module:Class", or a factory(workdir, SandboxConfig)}``
    for extra sandboxes; a subclass's class methods (``check``, ``cleanup``, ...) are its lifecycle."""
