"""The runtime image of the docker sandbox: ``--docker-image`` (``DockerOptions.image``: self-contained, e.g. built from
docker/Dockerfile), or one built offline, with no registry: a debootstrap root filesystem made
once per machine (cached, under a file lock), imported into each engine that lacks it, and
tagged by the hash of its recipe so it is rebuilt only when the recipe changes.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from filelock import FileLock

from ..base import SandboxError

UID = 65534  # the sandbox's user (nobody)
SUITE = "bookworm"
RECIPE = f"debootstrap --variant=minbase {SUITE}; chmod 755 /root; /workspace owned by {UID}; v2"


@functools.cache
def image_tag() -> str:
    digest = hashlib.sha256(f"{RECIPE}|{sys.platform}".encode()).hexdigest()[:12]
    return f"mlgym-runtime:{digest}"


def ensure_image(client, custom: str | None = None) -> str:
    """The runtime image on this engine: ``custom`` (``--docker-image``: a self-contained image, e.g.
    built from docker/Dockerfile, with Python, the task stack and this package) if given (it must be
    there), else one imported from a root filesystem built offline once per machine (debootstrap,
    cached, locked), which mounts this host's Python."""
    if tag := custom:
        try:
            client.images.get(tag)
        except Exception:
            raise SandboxError(f"the image {tag} is not on the engine at {client.api.base_url}; build it there "
                               f"(docker build -t {tag} -f docker/Dockerfile .) or pull it") from None
        return tag
    tag = image_tag()
    try:
        client.images.get(tag)
        return tag
    except Exception:  # not found: import it
        pass
    from ...task import default_cache_dir
    cache = default_cache_dir() / "docker"
    cache.mkdir(parents=True, exist_ok=True)
    tar = cache / f"{tag.replace(':', '-')}.tar"
    with FileLock(str(tar) + ".lock"):
        if not tar.exists():
            _build_rootfs(tar)
        try:
            client.images.get(tag)
        except Exception:
            repository, _, version = tag.partition(":")
            with open(tar, "rb") as f:
                client.api.import_image_from_data(f.read(), repository=repository, tag=version)
    return tag


def _build_rootfs(tar: Path) -> None:
    if not shutil.which("debootstrap"):
        raise SandboxError(f"the image {image_tag()} is missing and debootstrap is not installed to build it "
                           "(apt-get install debootstrap, or bash docker/start-engine)")
    with tempfile.TemporaryDirectory(prefix="mlgym-rootfs-") as d:
        root = Path(d) / "rootfs"
        run = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(root)], capture_output=True, text=True)
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
            raise SandboxError(f"debootstrap failed: {last}")
        (root / "root").chmod(0o755)  # the host Python may be mounted under /root
        (root / "workspace").mkdir()  # a volume mounted here starts with this owner (remote engines)
        os.chown(root / "workspace", UID, UID)
        subprocess.run(["tar", "-C", str(root), "-cf", f"{tar}.part", "."], check=True)
        os.replace(f"{tar}.part", tar)
