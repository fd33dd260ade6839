"""What the sandbox of a run guarantees: its isolation, the best its backend gives, and the lines
that say so (the header, the end of the run, ``summary.json``, ``report.html``, JUnit) or that stop
a run asking for more (``--mlgym-min-isolation``).

Levels rank none < unshare < bwrap; the docker backend counts as the top level (it gives every
guarantee bwrap gives: no network, only the workspace and data mounted, own PID namespace, no
capabilities). A backend another plugin adds has no known level.
"""
from __future__ import annotations

from typing_extensions import TypedDict  # pydantic reads typing.TypedDict only from Python 3.12

from ..sandbox import isolation as _isolation

LEVELS = ("none", "unshare", "bwrap")  # the values of --mlgym-min-isolation, weakest first
RANK = _isolation.RANK  # none < unshare < bwrap = docker
BEST = {"local": "bwrap", "docker": "docker"}  # the strongest mode of each backend
DOCKER = ("docker: one container per episode, no network, a read-only image with only the workspace and data "
          "mounted, own PID namespace, no capabilities, memory and processes capped")
HOW = "install bubblewrap (or run as root where user namespaces are off), or use --sandbox docker"
FLAG = "--mlgym-min-isolation"


class IsolationInfo(TypedDict):
    """What ``info`` gives: the ``isolation`` object of ``summary.json`` (a plain dict, so workers get a copy)."""

    backend: str
    mode: str | None
    description: str
    best: str | None
    weaker: bool
    required: str | None
    forced: str | None
    machine_best: str | None


class IsolationWarning(UserWarning):
    """The run's isolation is weaker than its backend's best (``-W error::UserWarning`` stops such a run)."""


def describe(mode: str | None) -> str:
    """What ``mode`` guarantees, in one line."""
    if mode in _isolation.MODES:
        return _isolation.describe(mode)
    if mode == "docker":
        return DOCKER
    return "not recorded" if mode is None else f"{mode}: a plugin's sandbox, its isolation is not known to pytest-mlgym"


def info(backend: str, mode: str | None, *, required: str | None = None, forced: str | None = None,
         machine_best: str | None = None) -> IsolationInfo:
    """The ``isolation`` object of ``summary.json``: the mode in use and what it guarantees, the best
    of its backend, whether it is weaker, the required minimum (``--mlgym-min-isolation``), the
    ``MLGYM_ISOLATION`` value that forced it and the best this machine gives (local backend)."""
    best = BEST.get(backend, mode)
    weaker = mode in RANK and best in RANK and RANK[mode] < RANK[best]
    return IsolationInfo(backend=backend, mode=mode, description=describe(mode), best=best, weaker=weaker,
                         required=required, forced=forced, machine_best=machine_best)


def of_records(records) -> IsolationInfo:
    """The isolation of a set of run records (a report made offline): their weakest mode."""
    modes = {(r.sandbox, r.isolation) for r in records}
    backend, mode = min(modes, key=lambda m: (RANK.get(m[1] or "", -1), m[0], m[1] or ""), default=("local", None))
    return info(backend, mode)


def warning(i: IsolationInfo) -> str | None:
    """The loud line for a mode weaker than its backend's best, or None."""
    if not i.get("weaker"):
        return None
    mode, best = i["mode"], i["best"] or ""  # weaker: both are ranked modes
    return (f"WARNING: isolation {mode} is weaker than {best} (the best of --sandbox {i['backend']}): agents can "
            f"read hidden answers and fake scores; {describe(mode)}; {_fix(i, best)}")


def refusal(i: IsolationInfo, required: str) -> str | None:
    """The one-line usage error when the isolation is below ``required``, or None when it is enough."""
    mode = i["mode"]
    if mode not in RANK:
        return (f"{FLAG} {required}: the isolation of --sandbox {i['backend']} is not known (only local and "
                f"docker are ranked)")
    if RANK[mode] >= RANK[required]:
        return None
    return (f"{FLAG} {required}: this session's sandbox isolation is {mode}, below the required {required}; "
            f"{_fix(i, required)}")


def _fix(i: IsolationInfo, target: str) -> str:
    """How to get ``target``: unset ``MLGYM_ISOLATION`` where it forces a weaker mode than this
    machine gives, else install bubblewrap or use docker."""
    forced, machine = i.get("forced"), i.get("machine_best")
    if forced and machine in RANK and RANK[machine] >= RANK[target]:
        return f"MLGYM_ISOLATION={forced} forces it: unset it (this machine gives {machine})"
    return f"to get {target}: " + (f"unset MLGYM_ISOLATION={forced} and " if forced else "") + HOW
