"""Agents: a small protocol, built-in policies, and a registry of named agents.

``--agent NAME`` resolves to ``agents/NAME.yaml`` (a ``policy`` plus its parameters), or to a
built-in policy of that name, or ``POLICY:ARGUMENT`` (``replay:run.jsonl``). An agent never
touches the filesystem of the task: everything goes through the env and its sandbox.
"""
from __future__ import annotations

import importlib
import inspect
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import yaml

from ..results import STATUSES, Status
from ..task import load_yaml

# litellm, when an agent imports it, must use its bundled price list, never fetch one at import
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@dataclass(frozen=True)
class TaskInfo:
    """What an agent is told about its task when an episode starts (besides the first observation)."""

    id: str
    name: str
    description: str
    metric: str
    direction: str
    baseline: float  # the baseline's score on the split validate shows (dev under the sealed protocol)
    artefact: str
    baseline_command: str | None
    max_steps: int
    seed: int
    knobs: tuple[dict, ...] = ()  # the baseline's declared tunables (task.yaml ``knobs``)
    step_s: float = 300.0  # the longest one action may run
    episode_s: float = 3600.0  # the whole episode's wall-clock limit


@runtime_checkable
class Agent(Protocol):
    """``act`` returns the next action. Its ``observation`` is an :class:`~pytest_mlgym.observation.
    Observation`: the text (what an LLM reads) with typed ``events`` (what a program reads). An agent
    may also keep, as attributes, ``thought`` (why it took its last action; saved beside the action in
    the trajectory), ``cost_usd`` and ``tokens``."""

    def reset(self, task: TaskInfo) -> None: ...
    def act(self, observation: str) -> str: ...


class AgentError(Exception):
    """An agent name or config that cannot be used; the message is one line."""


class EpisodeEnd(Exception):
    """Raised by an agent to end its episode with a status (``cost_limit``, ``error``) and a reason;
    what is in the workspace is still scored."""

    def __init__(self, status: Status, reason: str):
        if status not in STATUSES or status in ("running", "submitted"):
            raise ValueError(f"EpisodeEnd: {status!r} is not a status an episode can end with")
        super().__init__(reason)
        self.status, self.reason = status, reason


# policy name -> "module:class"; plugins add more through the pytest_mlgym_agents hook.
POLICIES: dict[str, str] = {
    "baseline": "pytest_mlgym.agents.builtin:BaselineAgent",
    "replay": "pytest_mlgym.agents.builtin:ReplayAgent",
    "search": "pytest_mlgym.agents.search:SearchAgent",
    "llm": "pytest_mlgym.agents.llm:LLMAgent",
}
ALIASES = {"litellm": "llm"}  # --agent litellm:<model> is the llm policy with that model


@dataclass(frozen=True)
class AgentSpec:
    """A resolved ``--agent`` value: its display name, policy and parameters."""

    name: str
    policy: str
    params: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None  # the yaml file it came from

    def policy_class(self) -> type:
        module, _, cls = POLICIES[self.policy].partition(":")
        return getattr(importlib.import_module(module), cls)

    def make(self) -> Agent:
        try:
            return self.policy_class()(**self.params)
        except TypeError as e:
            where = self.source or f"agent '{self.name}'"
            raise AgentError(f"{where}: bad parameters for policy '{self.policy}': {e}") from None

    def check(self) -> None:
        """Fail early, in one line, if this agent cannot run here (bad parameters, a missing API key, an
        unknown model, a server that does not answer)."""
        cls = self.policy_class()
        try:
            inspect.signature(cls).bind(**self.params)
        except TypeError as e:
            raise AgentError(f"{self.source or self.name}: bad parameters for policy '{self.policy}': {e}") from None
        check = getattr(cls, "check", None)
        if check is None:
            return
        try:
            check(**self.params)
        except AgentError as e:
            raise AgentError(f"{self.name}: {e}") from None
        except TypeError as e:
            raise AgentError(f"{self.source or self.name}: bad parameters for policy '{self.policy}': {e}") from None


def choices(agent_dirs: list[Path]) -> list[str]:
    named = {p.stem for d in agent_dirs for p in Path(d).glob("*.yaml")}
    return sorted(named | set(POLICIES) - {"llm"})  # llm is named by its model: litellm:MODEL


def resolve(name: str, agent_dirs: list[Path]) -> AgentSpec:
    """Turn an ``--agent`` value into an AgentSpec, or raise AgentError listing the valid choices."""
    for d in agent_dirs:
        path = Path(d) / f"{name}.yaml"
        if path.is_file():
            return _from_yaml(name, path)
    policy, sep, arg = name.partition(":")
    policy = ALIASES.get(policy, policy)
    if policy == "llm":
        if not arg:
            raise AgentError("agent 'litellm' needs a model: --agent litellm:<litellm model string>, e.g. "
                             "litellm:anthropic/claude-sonnet-4-6, or an agents/NAME.yaml with policy: llm")
        return AgentSpec(name, policy, {**_model_query(arg), "name": name})
    if policy in POLICIES:
        if policy == "replay":
            if not sep:
                raise AgentError("agent 'replay' needs a trajectory: --agent replay:PATH (a .jsonl file or a "
                                 "folder of <task>.jsonl files), or an agents/NAME.yaml with policy: replay")
            return AgentSpec(name, policy, {"trajectory": arg})
        if sep:
            raise AgentError(f"agent '{policy}' takes no argument (got '{name}')")
        return AgentSpec(name, policy)
    raise AgentError(f"unknown agent '{name}'; valid agents: {', '.join(choices(agent_dirs))} "
                     f"(or replay:PATH, litellm:MODEL; add agents/{name}.yaml to define it)")


def _model_query(arg: str) -> dict[str, Any]:
    """``MODEL?api_base=URL&input_cost_per_token=3e-6``: the model and the llm policy's parameters
    (values: true/false, numbers, else text). No API keys: a name is shown in every
    report."""
    model, _, query = arg.partition("?")
    if not model:
        raise AgentError(f"litellm:{arg}: give the model before '?'")
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True) if query else []
    except ValueError:
        raise AgentError(f"litellm:{model}?...: write its parameters as ?key=value&key=value") from None
    params: dict[str, Any] = {"model": model}
    for key, value in pairs:
        if key in ("api_key", "name", "model"):
            why = ("an API key in an agent's name would be in every report: export it, or write an "
                   "agents/NAME.yaml with api_key: ${VAR}") if key == "api_key" else "it is set by the agent's name"
            raise AgentError(f"litellm:{model}?...: {key} cannot be given here ({why})")  # never echo a key
        params[key] = _scalar(value)
    return params


def _scalar(value: str) -> bool | int | float | str:
    """A query value as the parameter it stands for: true/false, an int, a float (3e-6), else the text."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _from_yaml(name: str, path: Path) -> AgentSpec:
    try:
        raw = load_yaml(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise AgentError(f"{path}: cannot read: {' '.join(str(e).split())}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("policy"), str):
        raise AgentError(f"{path}: policy: a policy name is required ({', '.join(POLICIES)})")
    params = {k: _expand(v) for k, v in raw.items()}
    policy = params.pop("policy")
    params.pop("description", None)
    if policy not in POLICIES:
        raise AgentError(f"{path}: policy: unknown policy '{policy}'; valid: {', '.join(POLICIES)}")
    if policy == "replay" and "trajectory" in params:
        params["trajectory"] = str((path.parent / params["trajectory"]).resolve())
    if policy == "llm":
        params.setdefault("name", name)
        model = str(params.get("model", ""))
        if model.startswith("mlgym-scripted/") and not os.path.isabs(model.split("/", 1)[1]):
            params["model"] = f"mlgym-scripted/{(path.parent / model.split('/', 1)[1]).resolve()}"
        for key in ("prompts", "memory_dir"):
            if isinstance(params.get(key), str) and ("/" in params[key] or params[key].endswith(".yaml")):
                params[key] = str((path.parent / params[key]).resolve())
    return AgentSpec(name, policy, params, path)


def _expand(value):
    """``${VAR}`` and ``${VAR:-default}`` in string values, from the environment."""
    if not isinstance(value, str):
        return value
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)
