"""One episode of the ``llm`` agent on a task, its model played by the ``mlgym-scripted`` provider
(a ``litellm.CustomLLM``) through litellm's real call path: what the harness tests of the llm agent
share (tests/test_llm*.py). litellm is imported when an episode is played, never at collection."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_mlgym.agents import AgentSpec
from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.episode import Episode
from pytest_mlgym.results import RunRecord
from pytest_mlgym.task import Task

SOLVE = [  # open, edit, run, validate, submit: the tiny task's target is 7
    {"tool": "open", "args": {"path": "answer.txt"}, "text": "Let me read the current answer."},
    {"tool": "edit", "args": {"start": 1, "end": 1, "text": "7\n"}, "text": "I will try 7."},
    {"tool": "bash", "args": {"command": "cat answer.txt"}},
    {"tool": "validate"},
    {"tool": "submit"},
]


@dataclass
class Played:
    record: RunRecord
    steps: list[dict]  # the trajectory after the reset
    requests: list[dict]  # what the model was sent, call by call
    agent: Any
    wall_s: float


def play_scripted(task: Task, tmp_path: Path, replies: list[dict], *, script_extra: dict | None = None,
                  env_steps: int = 20, episode_s: float | None = None, **params) -> Played:
    """Play ``replies`` (a script: tool calls, texts, faults) as the model of one episode on ``task``;
    ``params`` are the llm agent's (``tool_calling`` on unless given)."""
    from pytest_mlgym.agents import scripted  # imports litellm: never at collection
    if episode_s is not None:
        limits = task.spec.limits.model_copy(update={"episode_s": episode_s})
        task = type(task)(task.spec.model_copy(update={"limits": limits}), task.path)
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"replies": replies, **(script_extra or {})}))
    agent = AgentSpec("scripted", "llm", {"model": f"mlgym-scripted/{script}", "tool_calling": True,
                                          "name": "scripted", **params}).make()
    env = MLGymEnv(task, cache_dir=tmp_path / "cache", max_steps=env_steps)
    ep = Episode.start(env, seed=0)
    t0 = time.monotonic()
    try:
        rec = ep.run(agent, name="scripted")
    finally:
        ep.close()
    return Played(rec, env.state.trajectory[1:], scripted.HANDLER.requests[agent.episode], agent,
                  time.monotonic() - t0)
