"""The ``llm`` harness's chat format, in one place for the agent and for export: its prompts, the
system message, the first user message (the task) and each observation's turn.

Light on purpose (no litellm): :mod:`pytest_mlgym.export` rebuilds the conversations of saved runs
with it, exactly as :class:`~pytest_mlgym.agents.llm.LLMAgent` built them.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from ..observation import Intro, last
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


def task_message(first: str, commands: str) -> str:
    """The first user message: the first observation's task text (its docs are in the system message)."""
    intro = last(first, Intro)
    return intro.task.strip() if intro is not None else first.replace(commands, "").strip()


def observation_turn(prompts: dict, observation: str, *, step: int, max_steps: int, spent: float, cost_limit: float,
                     minutes_left: float) -> str:
    """An observation as the model reads it: with the step counter and what is left of the budget."""
    return prompts["observation"].format(observation=observation, step=step, max_steps=max_steps,
                                         spent=f"${spent:.2f}", cost_limit=f"${cost_limit:.2f}",
                                         minutes_left=f"{minutes_left:.0f}").strip()
