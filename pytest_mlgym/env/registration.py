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
ENTRY_POINT = "pytest_mlgym.env:MLGymEnv"
_ID = re.compile(r"[a-z][a-z0-9_]*")  # as task.yaml's id, which must equal its folder's name


def listed(roots: list[Path] | None = None) -> list[str]:
    """The task ids the roots may hold: their sub-folders' names that are valid ids, in order.
    Reads the roots' entries only (a task folder's own files are read when its env is made)."""
    ids: dict[str, None] = {}
    for root in default_task_roots() if roots is None else roots:
        try:
            with os.scandir(root) as entries:
                names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=True) and _ID.fullmatch(e.name))
        except OSError:
            continue
        ids.update(dict.fromkeys(names))
    return list(ids)


def register(task_id: str) -> str:
    """Register ``mlgym/<task_id>`` (if it is not yet); returns the env id."""
    env_id = f"{NAMESPACE}/{task_id}"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=ENTRY_POINT, kwargs={"task": task_id})
    return env_id


def register_all(roots: list[Path] | None = None) -> list[str]:
    """Register ``mlgym/<id>`` for every task folder listed in the roots (default: the default task
    roots); call it again after adding a root (``$MLGYM_TASKS_DIR``)."""
    return [register(task_id) for task_id in listed(roots)]


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
