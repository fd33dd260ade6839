"""``gymnasium.make("mlgym/<task-id>")``: registration from a listing of the task folders' names.

Importing :mod:`pytest_mlgym.env` registers one id per folder name in the default task roots
(``$MLGYM_TASKS_DIR``, else ``./tasks``, else the repository's ``tasks/``): a listing of the roots
only, so no task folder is opened, read or validated at import. A task is loaded when its env is
made (:func:`find_task` loads its one folder), so a broken task fails its own ``make``, with its
one-line error, and no other. Gymnasium 1.x has no entry-point plugin group; its ``module:id``
form needs no import at all: ``gymnasium.make("pytest_mlgym.env:mlgym/<task-id>")``.
The env checker is on, as for any Gymnasium env.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import gymnasium as gym

from ..task import Task, TaskError, default_task_roots, discover, load_task

NAMESPACE = "mlgym"
ENTRY_POINT = "pytest_mlgym.env.registration:make_env"
_ID = re.compile(r"[a-z][a-z0-9_]*")  # as task.yaml's id, which must equal its folder's name


def listed(roots: list[Path] | None = None) -> dict[str, Path]:
    """``{task id: root}`` for the tasks the roots may hold: their sub-folders' names that are valid
    ids (the first root wins). Reads the roots' entries only, never a task folder."""
    ids: dict[str, Path] = {}
    for root in default_task_roots() if roots is None else roots:
        try:
            with os.scandir(root) as entries:
                names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=True) and _ID.fullmatch(e.name))
        except OSError:
            continue
        for name in names:
            ids.setdefault(name, Path(root))
    return ids


def register(task_id: str, root: Path | None = None) -> str:
    """Register ``mlgym/<task_id>`` (if it is not yet), the task of ``root`` (default: the first
    default task root holding it when the env is made); returns the env id."""
    env_id = f"{NAMESPACE}/{task_id}"
    if env_id not in gym.registry:
        kwargs = {"task": task_id, **({"roots": (str(root),)} if root is not None else {})}
        gym.register(env_id, entry_point=ENTRY_POINT, kwargs=kwargs)
    return env_id


def register_all(roots: list[Path] | None = None) -> list[str]:
    """Register ``mlgym/<id>`` for every task folder listed in the roots (default: the default task
    roots); call it again after adding a root. An id already registered keeps its task."""
    return [register(task_id, root) for task_id, root in listed(roots).items()]


def make_env(task: str, roots: tuple[str, ...] | None = None, **kwargs):
    """The entry point of ``mlgym/<id>``: an :class:`MLGymEnv` of the task ``task`` of ``roots``."""
    from .env import MLGymEnv

    return MLGymEnv(find_task(task, [Path(r) for r in roots]) if roots else task, **kwargs)


def find_task(task_id: str, roots: list[Path] | None = None) -> Task:
    """The task ``task_id`` of the roots: its folder alone is loaded (the first root holding it)."""
    roots = default_task_roots() if roots is None else roots
    for root in roots:
        if (Path(root) / task_id / "task.yaml").is_file():
            return load_task(Path(root) / task_id)
    tasks, errors = discover(roots)  # not found: name the ones there are
    if task_id in errors:
        raise errors[task_id]
    raise TaskError(f"unknown task '{task_id}'; known: {', '.join(sorted(t.id for t in tasks)) or 'none'}")
