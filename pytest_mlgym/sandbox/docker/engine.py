"""Docker Engines: reaching them (retried), choosing one per episode, labelling what runs on them,
and removing what sessions left.

Every container carries its session's id and owner (``labels``); the session id is the pytest
session's identity, shared with xdist workers through ``MLGYM_SESSION_ID`` (and its owning process
through ``MLGYM_SESSION_OWNER``), so a container of any worker, or of a crashed session, can be
told apart from a live one's. The engine to use comes from :class:`~pytest_mlgym.sandbox.DockerOptions`
(``--docker-host``), else the Docker SDK's own ``DOCKER_HOST``, else the default socket.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import tenacity
from filelock import FileLock

from ..base import DockerOptions, SandboxError

LABEL = "mlgym.session"  # every container carries its pytest session's id (MLGYM_SESSION_ID)
OWNER = "mlgym.owner"  # host:pid of the process that owns the session
ROLE = "mlgym.role"  # "evaluator" for the containers that score artefacts
SCHEDULE = Path(tempfile.gettempdir()) / "mlgym-docker-schedule"  # .lock, and -<session>.json: episodes started


@dataclass(frozen=True)
class Engine:
    """One Docker Engine as the sandboxes and the evaluator use it: its URL (None: the default), the
    SDK client, and the session's image option (``--docker-image``)."""

    url: str | None
    client: Any
    image: str | None = None

    def run_trusted(self, argv: list[str], **kw) -> tuple[int | None, str, str]:
        """Run trusted code (an evaluator) in a fresh container of its own on this engine."""
        from .trusted import run_trusted
        return run_trusted(self, argv, **kw)

    def start_code(self, broker, src: Path, seed: int):
        """Start agent code an evaluator asked for, in a container of its own on this engine."""
        from .run import DockerRun
        return DockerRun(broker, src, seed)


def engine_at(url: str | None = None, options: DockerOptions = DockerOptions()) -> Engine:
    """The engine at ``url`` (None: DOCKER_HOST or the default socket) with the session's options."""
    return Engine(url, _client(url), options.image)


def hosts(options: DockerOptions = DockerOptions()) -> list[str | None]:
    """The engines to spread episodes over: ``--docker-host``, else DOCKER_HOST or the default socket (None)."""
    return list(options.hosts) or [os.environ.get("DOCKER_HOST") or None]


def is_remote(url: str | None, options: DockerOptions = DockerOptions()) -> bool:
    """An engine that cannot see this machine's files (tcp://, ssh://): workspaces are copied."""
    return url is not None and bool(url) and not url.startswith(("unix://", "npipe://")) and not options.bind


@functools.cache
def _client(url: str | None = None):
    try:
        import docker
    except ImportError:
        raise SandboxError("the docker SDK is not installed (pip install docker)") from None
    where = url or os.environ.get("DOCKER_HOST") or "the default socket"
    try:
        return _connect(docker, url)
    except Exception as error:  # every way of not reaching an engine is one message
        why = " ".join(str(error).split())[:160]
        raise SandboxError(f"no Docker Engine answers at {where} ({type(error).__name__}: {why}); "
                           f"start one (bash docker/start-engine) or set DOCKER_HOST") from None


@tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_incrementing(start=1, increment=1),
                reraise=True)  # an engine under load can miss one call
def _connect(docker, url: str | None):
    # from_env, so that DOCKER_TLS_VERIFY / DOCKER_CERT_PATH apply to tcp:// hosts too
    client = docker.from_env(timeout=120, environment={**os.environ, **({"DOCKER_HOST": url} if url else {})},
                             use_ssh_client=bool(url and url.startswith("ssh://")))
    client.ping()
    return client


@contextlib.contextmanager
def placement(options: DockerOptions) -> Iterator[Engine]:
    """The engine for the next container, chosen and held under one lock with the container's start
    (so parallel workers see each other's containers): the one running the fewest containers; of
    equally busy ones, the one this session started the fewest episodes on (so episodes alternate
    over idle engines, whatever else runs there); then the first given."""
    with FileLock(f"{SCHEDULE}.lock"):
        counts = _started()
        clients = [(url, _client(url)) for url in hosts(options)]  # at least one
        busy = [(len(c.containers.list(filters={"status": "running"})), counts.get(str(u), 0), i)
                for i, (u, c) in enumerate(clients)]
        url, client = clients[min(busy)[2]]
        counts[str(url)] = counts.get(str(url), 0) + 1
        _counts_file().write_text(json.dumps(counts))
        yield Engine(url, client, options.image)


def _counts_file() -> Path:
    return Path(f"{SCHEDULE}-{labels()[LABEL]}.json")


def _started() -> dict[str, int]:
    """How many episodes this session started on each engine (read under the schedule lock)."""
    try:
        counts = json.loads(_counts_file().read_text())
    except (OSError, ValueError):
        return {}
    return counts if isinstance(counts, dict) else {}


def network(client) -> str:
    """For a task that asks for network: the engine's bridge, or the host's network where there is no
    bridge (a daemon started with --bridge=none)."""
    return "bridge" if client.networks.list(names=["bridge"]) else "host"


def labels() -> dict[str, str]:
    """The session's id, and the process that owns the session (to tell leftovers from live runs)."""
    owner = os.environ.get("MLGYM_SESSION_OWNER") or str(os.getpid())
    return {LABEL: os.environ.get("MLGYM_SESSION_ID") or f"interactive-{owner}",
            OWNER: f"{socket.gethostname()}:{owner}"}


def cleanup(session: str | None = None, options: DockerOptions = DockerOptions(), client=None) -> int:
    """Remove this session's containers, or (``session=None``) those whose owning process on this
    host is gone: the leftovers of crashed sessions. Returns how many were removed."""
    found = [c for client in ([client] if client else [_client(url) for url in hosts(options)])
             for c in client.containers.list(all=True, filters={"label": f"{LABEL}={session}" if session else LABEL})]
    removed = 0
    for c in found:
        host, _, pid = c.labels.get(OWNER, ":").partition(":")
        if session is None and host == socket.gethostname() and pid.isdigit() and psutil.pid_exists(int(pid)):
            continue  # a live session's container
        c.remove(force=True)
        removed += 1
    if session is not None:
        Path(f"{SCHEDULE}-{session}.json").unlink(missing_ok=True)
    return removed
