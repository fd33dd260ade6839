"""The docker backend: one container per episode on a Docker Engine, through the ``docker`` SDK.

- ``engine.py``: reaching engines, placing an episode on the least busy, labels, cleanup;
- ``container.py``: what both kinds of container sandbox share (:class:`ContainerSandbox`, the
  registered ``docker`` backend, which opens the kind the chosen engine can serve);
- ``bound.py``: :class:`DockerSandbox`, the workspace bind-mounted (an engine of this machine);
- ``remote.py``: :class:`RemoteDockerSandbox`, the workspace copied into a volume (tcp://, ssh://);
- ``image.py``, ``masks.py``: the runtime image, and hidden paths masked in containers;
- ``trusted.py``, ``run.py``: the evaluator's container, and agent code an evaluator calls.
"""
from __future__ import annotations

from .bound import DockerSandbox
from .container import ContainerSandbox
from .engine import LABEL, OWNER, ROLE, Engine, _client, cleanup, engine_at, hosts, is_remote, labels
from .image import ensure_image
from .masks import image_masks, mask_mounts
from .remote import RemoteDockerSandbox
from .trusted import run_trusted

__all__ = ["LABEL", "OWNER", "ROLE", "ContainerSandbox", "DockerSandbox", "Engine", "RemoteDockerSandbox", "_client",
           "check", "cleanup", "engine_at", "ensure_image", "hosts", "image_masks", "is_remote", "labels",
           "mask_mounts", "run_trusted"]


def check(options=None) -> None:
    """The backend's preflight (``ContainerSandbox.check``) with these options (default: none given)."""
    from ..base import DockerOptions, SandboxConfig
    ContainerSandbox.check(SandboxConfig(docker=options or DockerOptions()))
