"""Trusted code (the evaluator) on the docker backend's engine: a fresh container of its own, never
the agent's, removed once it has scored."""
from __future__ import annotations

from pathlib import Path

from .. import isolation
from .bound import own
from .engine import ROLE, Engine, labels
from .image import UID, ensure_image


def run_trusted(engine: Engine, argv: list[str], *, cwd: Path, env: dict[str, str], readonly: list[Path],
                memory_mb: int, timeout: float) -> tuple[int | None, str, str]:
    """Run trusted code (an evaluator) in a fresh container of its own on ``engine``: no
    network, ``cwd`` writable, ``readonly`` folders and the Python stack read-only, nothing else.
    Returns (exit code or None on timeout, stdout, stderr); the container is removed."""
    import docker.types

    client, custom = engine.client, engine.image
    own(cwd)
    mounts = {str(cwd): {"bind": str(cwd), "mode": "rw"}}
    if custom:  # the image has its own Python and this package
        argv = ["python", *argv[1:]]
        env = {**env, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    for p in [*readonly, *([] if custom else isolation.python_roots())]:
        if p.exists() and not any(p.is_relative_to(m) for m in map(Path, mounts)):
            mounts[str(p)] = {"bind": str(p), "mode": "ro"}
    container = client.containers.run(
        ensure_image(client, custom), argv, detach=True, labels={**labels(), ROLE: "evaluator"}, network_mode="none",
        user=f"{UID}:{UID}", working_dir=str(cwd), environment=env, volumes=mounts, read_only=True,
        tmpfs={"/tmp": "rw,size=1g"}, cap_drop=["ALL"], security_opt=["no-new-privileges"],
        mem_limit=f"{memory_mb}m", memswap_limit=f"{memory_mb}m", pids_limit=512,
        ulimits=[docker.types.Ulimit(name="fsize", soft=2 << 30, hard=2 << 30)])
    try:
        try:
            code = container.wait(timeout=timeout)["StatusCode"]
        except Exception:  # the engine's read timed out: the evaluator ran too long
            return None, "", ""
        out = container.logs(stdout=True, stderr=False).decode(errors="replace")
        err = container.logs(stdout=False, stderr=True).decode(errors="replace")
        return code, out, err
    finally:
        container.remove(force=True)
