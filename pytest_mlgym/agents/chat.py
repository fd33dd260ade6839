"""The ``llm`` harness's chat format, in one place for the agent and for export: its prompts, the
system message, the first user message (the task) and each observation's turn.

Light on purpose (no litellm): :mod:`pytest_mlgym.export` rebuilds the conversations of saved runs
with it, exactly as :class:`~pytest_mlgym.agents.llm.LLMAgent` built them.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from ..observation import Intro, LimitsLeft, last, say
from ..task import load_yaml
from . import AgentError

PROMPTS = Path(__file__).parent / "prompts"
COST_LIMIT = 4.0  # dollars: the llm agent's default cost limit, which each observation's turn shows


def load_prompts(name: str = "default") -> dict:
    """The prompt set ``name`` (``prompts/<name>.yaml``, or a path), over the default set."""
    path = PROMPTS / f"{name}.yaml" if "/" not in name and not name.endswith(".yaml") else Path(name)
    base = load_yaml((PROMPTS / "default.yaml").read_text())
    try:
        given = load_yaml(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise AgentError(f"prompts: cannot read {path}: {' '.join(str(e).split())}") from None
    if not isinstance(given, dict):
        raise AgentError(f"prompts: {path} must be a mapping of prompt names to text")
    return {**base, **given}


def system_message(prompts: dict, commands: str, tools: bool = False, memory: bool = False) -> str:
    """The system prompt, the action format (native tool calls or fenced text), the commands' docs."""
    parts = (prompts["system"], prompts["tools_mode" if tools else "text_mode"], commands,
             prompts["memory"] if memory else "")
    return "\n\n".join(p.strip() for p in parts if p.strip())


def task_message(first: str, commands: str, max_steps: int | None = None) -> str:
    """The first user message: the first observation's task text (its docs are in the system message),
    its step budget ``max_steps`` when given (the agent's own, when lower than the env's: the one
    each observation's step counter shows)."""
    intro = last(first, Intro)
    if intro is None:
        return first.replace(commands, "").strip()
    limits = last(first, LimitsLeft)
    if max_steps is None or limits is None or max_steps == limits.steps:
        return intro.task.strip()
    minutes = limits.seconds / 60  # the budget sentence as the env wrote it, then with this budget
    return intro.task.replace(say("budget", steps=limits.steps, minutes=minutes),
                              say("budget", steps=max_steps, minutes=minutes)).strip()


def observation_turn(prompts: dict, observation: str, *, step: int, max_steps: int, spent: float, cost_limit: float,
                     minutes_left: float, open_file: str | None = None, cwd: str | None = None) -> str:
    """An observation as the model reads it: where it leaves the agent (the open file and the current
    folder: given, or from the observation's :class:`LimitsLeft`), the step counter and what is left
    of the budget."""
    limits = last(observation, LimitsLeft)
    if limits is not None and cwd is None:
        open_file, cwd = limits.open_file, limits.cwd
    where = prompts["where"].format(open_file=open_file or prompts["no_open_file"], cwd=cwd) if cwd else ""
    return prompts["observation"].format(observation=observation, where=where, step=step, max_steps=max_steps,
                                         spent=f"${spent:.2f}", cost_limit=f"${cost_limit:.2f}",
                                         minutes_left=f"{minutes_left:.0f}").strip()
