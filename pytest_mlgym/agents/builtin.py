"""The built-in policies that need no model: ``baseline`` and ``replay``."""
from __future__ import annotations

import json
from pathlib import Path

from . import AgentError, TaskInfo


class BaselineAgent:
    """Runs the task's shipped baseline as is and submits: its score is the measured baseline."""

    def reset(self, task: TaskInfo) -> None:
        self.plan = ([task.baseline_command] if task.baseline_command else []) + ["submit"]

    def act(self, observation: str) -> str:
        return self.plan.pop(0) if self.plan else "submit"


class ReplayAgent:
    """Plays the actions of a recorded trajectory, then submits.

    ``trajectory`` is a JSONL file (one object with an ``action`` key per line; other keys,
    such as a recorded observation, are ignored) or a folder holding ``<task-id>.jsonl``.
    """

    def __init__(self, trajectory: str):
        self.trajectory = Path(trajectory)
        if not self.trajectory.exists():
            raise AgentError(f"replay: trajectory {self.trajectory} does not exist")

    def reset(self, task: TaskInfo) -> None:
        path = self.trajectory / f"{task.id}.jsonl" if self.trajectory.is_dir() else self.trajectory
        if not path.is_file():
            raise AgentError(f"replay: no trajectory for task {task.id} ({path} does not exist)")
        self.actions = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                step = json.loads(line)
                if step.get("action") not in (None, "(reset)"):
                    self.actions.append(str(step["action"]))
            except (ValueError, AttributeError):
                raise AgentError(f"{path}:{n}: not a JSON object with an 'action' key") from None

    def act(self, observation: str) -> str:
        return self.actions.pop(0) if self.actions else "submit"
