"""The Docker backend (Docker Engine through the ``docker`` SDK): not built yet.

Selecting it fails at session start with a clear message until the Docker issue lands.
"""
from __future__ import annotations

from . import SandboxError


def check() -> None:
    raise SandboxError("the docker sandbox is not yet available in this version; use --sandbox local")


class DockerSandbox:
    def __init__(self, workdir, config):
        check()
