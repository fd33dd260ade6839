"""Cost-effectiveness (``summary.json``'s ``cost``): per agent, AUP against what it spent, with the
Pareto frontier of each axis, and per task the cost of each unit of improvement over the baseline.

Axes (``AXES``): total model cost (``cost_usd``), wall time, core-seconds and GPU-seconds, each the
sum over an agent's latest runs (also runs the infrastructure cut short: what was spent was spent).
A total is None when a run does not say (core-seconds of records made before compute metadata): a
run left out would make an agent look cheaper. AUP is the best submission's (``summary.aup``); an
agent without one (``summary.INFRA_RULE``) has no point. An agent is on an axis's frontier when no
other agent is at most as costly and at least as good and strictly one of the two: equal points are
all on it, and an agent that costs nothing and scores best is the frontier alone.

Cost per unit of improvement (per task and agent): the total cost over the improvement of the mean
best submission (over the counted seeds) over the task's baseline, direction-aware (lower is better
for a ``min`` metric). With no improvement (equal or worse, or no valid submission) it is None and the
reason says so: never a negative or infinite number.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from statistics import fmean
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from ..compute import hardware_kinds
from ..results import RunRecord

Axis = Literal["cost_usd", "wall_s", "core_seconds", "gpu_seconds"]
AXES: tuple[Axis, ...] = get_args(Axis)
LABELS = {"cost_usd": "model cost (USD)", "wall_s": "wall time (s)", "core_seconds": "CPU core-seconds",
          "gpu_seconds": "GPU-seconds (allocated)"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AgentCost(_Model):
    """One agent's AUP (best submission) and totals over its runs; ``frontier``: the axes whose
    Pareto frontier it is on."""

    aup: float | None = None
    runs: int = 0
    cost_usd: float | None = None
    wall_s: float | None = None
    core_seconds: float | None = None
    gpu_seconds: float | None = None
    frontier: list[Axis] = []


class Improvement(_Model):
    """One agent on one task: its totals, the improvement of its mean best submission over the
    baseline (direction-aware; None: none), and what each unit of it cost (None: no improvement)."""

    mean_best_submission: float | None = None
    improvement: float | None = None
    cost_usd: float = 0.0
    core_seconds: float | None = None
    usd_per_unit: float | None = None
    core_seconds_per_unit: float | None = None
    reason: str = ""  # why there is no cost per unit


class CostSummary(_Model):
    agents: dict[str, AgentCost] = {}
    frontier: dict[str, list[str]] = {}  # axis -> the agents on its frontier, cheapest first
    tasks: dict[str, dict[str, Improvement]] = {}
    hardware: list[str] = []  # the kinds of hardware the runs come from (compute.Compute.hardware)
    rule: str = ("AUP of the best submission against each axis's total over the agent's latest runs; frontier: "
                 "no other agent at most as costly and at least as good, strictly in one; cost per unit: total "
                 "cost / improvement of the mean best submission over the baseline (None: no improvement)")


def frontier(points: Mapping[str, tuple[float, float]]) -> list[str]:
    """The names whose (cost, score) no other point dominates (lower cost, higher score is better),
    cheapest first (ties by name)."""
    def dominated(c: float, s: float) -> bool:
        return any(c2 <= c and s2 >= s and (c2 < c or s2 > s) for c2, s2 in points.values())
    return sorted((n for n, (c, s) in points.items() if not dominated(c, s)), key=lambda n: (points[n][0], n))


def _total(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else round(sum(v for v in values if v is not None), 6)


def improvement(task: str, agent: str, runs: list[RunRecord]) -> Improvement:
    """Cost per unit of improvement of ``agent`` on ``task`` from its latest ``runs``."""
    first = runs[0]
    counted = [r.best_submission for r in runs if r.status != "infra_error" and r.best_submission is not None]
    usd = round(sum(r.cost_usd for r in runs), 6)
    core = _total([r.compute.core_seconds for r in runs])
    if not counted:
        return Improvement(cost_usd=usd, core_seconds=core, reason="no valid submission")
    mean = fmean(counted)
    gain = (mean - first.baseline) if first.direction == "max" else (first.baseline - mean)
    if not gain > 0:
        return Improvement(mean_best_submission=mean, cost_usd=usd, core_seconds=core,
                           reason=f"no improvement: mean best submission {mean:.6g} vs baseline {first.baseline:g}")
    return Improvement(mean_best_submission=mean, improvement=gain, cost_usd=usd, core_seconds=core,
                       usd_per_unit=usd / gain, core_seconds_per_unit=None if core is None else core / gain)


def build(latest: list[RunRecord], aup: Mapping[str, float], baseline_name: str) -> CostSummary:
    """The cost-effectiveness of the agents of ``latest`` (the latest run per task, agent and seed),
    given their best-submission AUP (``aup``, whose ``baseline_name`` entry is not an agent)."""
    by_agent: dict[str, list[RunRecord]] = defaultdict(list)
    by_task: dict[str, dict[str, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in latest:
        by_agent[r.agent].append(r)
        by_task[r.task][r.agent].append(r)
    agents = {a: AgentCost(aup=aup.get(a) if a != baseline_name else None, runs=len(rs),
                           cost_usd=_total([r.cost_usd for r in rs]), wall_s=_total([r.wall_s for r in rs]),
                           core_seconds=_total([r.compute.core_seconds for r in rs]),
                           gpu_seconds=_total([r.compute.gpu_seconds for r in rs]))
              for a, rs in sorted(by_agent.items())}
    fronts: dict[str, list[str]] = {}
    for axis in AXES:
        points = {a: (v, c.aup) for a, c in agents.items() if c.aup is not None and (v := getattr(c, axis)) is not None}
        if points:
            fronts[axis] = frontier(points)
            for a in fronts[axis]:
                agents[a].frontier = [*agents[a].frontier, axis]
    tasks = {t: {a: improvement(t, a, rs) for a, rs in sorted(ms.items())} for t, ms in sorted(by_task.items())}
    return CostSummary(agents=agents, frontier=fronts, tasks=tasks, hardware=hardware_kinds(r.compute for r in latest))


def plot(cost: CostSummary) -> str | None:
    """AUP against each axis (one panel per axis with data), the frontier drawn and every agent
    labelled, as a ``data:`` URI; None when no agent has both an AUP and a cost."""
    from .plots import _figure, _label, _png, colours

    axes = [a for a in AXES if cost.frontier.get(a)]
    if not axes:
        return None
    colour = colours(list(cost.agents))
    fig = _figure(5.0 * min(2, len(axes)), 3.4 * ((len(axes) + 1) // 2))
    for i, axis in enumerate(axes, 1):
        ax = fig.add_subplot((len(axes) + 1) // 2, min(2, len(axes)), i)
        points = {a: (v, c.aup) for a, c in cost.agents.items() if c.aup is not None
                  and (v := getattr(c, axis)) is not None}
        for a, (x, y) in sorted(points.items()):
            on = a in cost.frontier[axis]
            ax.scatter([x], [y], s=60 if on else 30, color=colour.get(a, "#000000"),
                       edgecolors="black" if on else "none", zorder=3)
            ax.annotate(_label(a), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        front = [points[a] for a in cost.frontier[axis]]
        ax.plot([p[0] for p in front], [p[1] for p in front], drawstyle="steps-post", color="#555555", ls="--",
                lw=1.2, zorder=2, label="Pareto frontier")
        ax.set(xlabel=LABELS[axis], ylabel="AUP (best submission)", title=f"AUP vs {LABELS[axis]}")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)
