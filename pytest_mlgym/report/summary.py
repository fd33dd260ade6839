"""The summary of a set of run records: per task and agent, and AUP per agent (``summary.json``).

``build`` makes a typed ``Summary``; every renderer (terminal, report.html, plots, the gates, JUnit)
reads that model, and the plugin sets its ``interrupted``, ``comparison`` and ``gates`` at the end
of the run. ``Summary.as_dict`` is the JSON object of ``summary.json`` (the three optional keys
only when set).
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from typing_extensions import TypedDict  # pydantic reads typing.TypedDict only from Python 3.12

from .. import scoring, selection
from ..metric import Direction
from ..results import GATED_KINDS, SCORE_KINDS, Protocol, RunRecord, ScoreKind
from . import aggregate, trust
from . import cost as cost_mod
from .aggregate import Stats
from .trust import IsolationInfo

RECORDED = "(recorded baseline)"  # the baseline scores of task.yaml, one more method in AUP
# best attempt: the test score of the attempt with the best dev score; best submission: the final
# artefact's; oracle best attempt: the best test score, selected on test feedback (MLGym's "best
# attempt"): reported, labelled, never gated on
KINDS = SCORE_KINDS
GATED = GATED_KINDS
OPTIONAL = ("interrupted", "comparison", "gates", "paired")  # set by the plugin; left out of the JSON when unset

AUP = dict[ScoreKind, dict[str, float]]  # {kind: {method: AUP@k}}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AgentRow(_Model):
    """One agent on one task: its runs (seeds) and the best of k of each score kind."""

    runs: int
    passed: int
    statuses: list[str]  # the runs' statuses, in seed order (str: a summary.json may come from elsewhere)
    isolation: list[str | None] = []
    reasons: list[str] = []
    cost_usd: float = 0.0
    wall_s: float = 0.0
    best_attempt: float | None = None
    best_submission: float | None = None
    oracle_best_attempt: float | None = None
    infra_errors: int = 0  # runs the infrastructure cut short (infra_error): counted in runs, never scored
    infra: dict[str, int] = {}  # their error classes (e.g. RateLimitError) and how many of each


class TaskSummary(_Model):
    metric: str
    direction: Direction
    baseline: float
    size: str = "lite"
    protocol: Protocol = "sealed"
    published: bool = False
    agents: dict[str, AgentRow] = {}


class Bootstrap(_Model):
    """The AUP intervals over seeds (``aup_ci``): resamples, confidence, the generator's seed."""

    n: int
    confidence: float
    seed: int


BOOTSTRAP = Bootstrap(n=1000, confidence=0.95, seed=0)


# the rule, also written in summary.json and README ("Reports"): an infra-failed run says nothing about the agent
INFRA_RULE = ("runs that ended in infra_error (the model provider failed, not the agent) are left out of AUP, "
              "AUP@j, the intervals and k; an agent with a task on which every run failed for infrastructure is "
              "not scored (no AUP: listed in unscored with those tasks; scoring them as infeasible would count the "
              "provider's failure against it, scoring it over its other tasks would not compare); every other "
              "method is scored over all tasks; --mlgym-resume runs them again")


class Infra(_Model):
    """Runs the infrastructure cut short, left out of AUP (``INFRA_RULE``)."""

    runs: int = 0  # how many runs (of the latest per run) ended in infra_error
    agents: dict[str, dict[str, int]] = {}  # agent -> error class -> runs
    unscored: dict[str, list[str]] = {}  # agent with no AUP -> the tasks where no run of it counted
    rule: str = INFRA_RULE

    def note(self) -> str:
        """One line for the tables and the gates; empty when no run failed for infrastructure."""
        if not self.runs:
            return ""
        who = "; ".join(f"{a}: {', '.join(f'{n} {c}' for c, n in sorted(cs.items()))}"
                        for a, cs in sorted(self.agents.items()))
        line = f"{self.runs} run{'s' * (self.runs != 1)} left out of AUP: infrastructure failures ({who})"
        if self.unscored:
            line += "; no AUP for " + "; ".join(f"{a} (no counted run on {', '.join(ts)})"
                                               for a, ts in sorted(self.unscored.items()))
        return line


class Interrupted(_Model):
    """After Ctrl-C: the runs recorded, those cut off mid-episode and those never started."""

    finished: int = 0
    interrupted: int = 0
    not_started: int = 0


class GateResult(TypedDict):
    gate: str
    passed: bool
    message: str


class Summary(_Model):
    created: str = ""
    sessions: list[str] = []
    protocols: list[str] = []
    isolation: IsolationInfo | None = None
    k: int
    tau_max: float
    tasks: dict[str, TaskSummary]
    aup: AUP
    aup_ci: dict[ScoreKind, dict[str, tuple[float, float]]] = {}  # the bootstrap interval over seeds
    aup_at: dict[str, AUP] = {}  # {"j": AUP@j}, j = 1..k
    bootstrap: Bootstrap = BOOTSTRAP
    infra: Infra = Infra()  # runs left out of AUP for infrastructure failures, and the tasks AUP covers
    stats: Stats = Stats()  # mean/IQM of normalised scores, per-task means, AUP@j, with intervals (aggregate.py)
    cost: cost_mod.CostSummary = cost_mod.CostSummary()  # AUP vs cost, wall, compute; cost per improvement
    interrupted: Interrupted | None = None
    comparison: dict[str, Any] | None = None  # --mlgym-compare: gates.compare and where the stored run is
    gates: list[GateResult] | None = None
    paired: dict[str, Any] | None = None  # this run's pairs of agents with intervals (report/noise.pairwise)

    @classmethod
    def of(cls, summary: Summary | Mapping) -> Summary:
        """``summary`` itself, or the model of a ``summary.json`` object."""
        return summary if isinstance(summary, Summary) else cls.model_validate(summary)

    def as_dict(self) -> dict:
        """The JSON object of ``summary.json``."""
        return self.model_dump(exclude={k for k in OPTIONAL if getattr(self, k) is None})


def build(records: list[RunRecord], isolation: IsolationInfo | None = None) -> Summary:
    """Group records by task and agent (the latest record wins per seed) and score them with AUP@k.

    Besides ``aup`` (``{kind: {method: AUP@k}}``, k the most runs of any task and agent):
    ``aup_ci`` (``{kind: {method: [low, high]}}``, the bootstrap interval over seeds, see
    ``scoring.aup_bootstrap`` and ``bootstrap``) and ``aup_at`` (``{"j": {kind: {method: AUP@j}}}``
    for j = 1..k, from each task and agent's j lowest seeds), all on the same ``tau_max``.

    ``isolation`` is the session's (``trust.info``: mode, description, the backend's best, whether it
    is weaker, the required minimum); without it, the weakest isolation the records hold. Each row
    has its runs' ``isolation`` too, in seed order."""
    latest = selection.latest_runs(records)
    by_task: dict[str, dict[str, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in latest:
        by_task[r.task][r.agent].append(r)
    infra = Infra()

    tasks, directions, baselines = {}, {}, {}
    scores: dict[str, dict[str, dict[str, float | None]]] = {kind: defaultdict(dict) for kind in KINDS}
    per_run: dict[str, dict[str, dict[str, list[float | None]]]] = {kind: defaultdict(dict) for kind in KINDS}
    for task, runs in by_task.items():
        first = next(iter(runs.values()))[0]
        directions[task], baselines[task] = first.direction, first.baseline
        agents = {}
        for agent, rs in runs.items():
            counted = [r for r in rs if r.status != "infra_error"]  # INFRA_RULE
            classes = dict(Counter(r.infra or "unknown" for r in rs if r.status == "infra_error"))
            for cls, n in classes.items():
                infra.agents.setdefault(agent, {})[cls] = infra.agents.get(agent, {}).get(cls, 0) + n
            if not counted:
                infra.unscored.setdefault(agent, []).append(task)
            best = {}
            for kind in KINDS:
                per_run[kind][task][agent] = [getattr(r, kind) for r in counted]
                best[kind] = scores[kind][task][agent] = scoring.best_of_k(per_run[kind][task][agent], first.direction)
            agents[agent] = AgentRow(runs=len(rs), passed=sum(r.passed for r in rs), statuses=[r.status for r in rs],
                                     isolation=[r.isolation for r in rs], reasons=[r.reason for r in rs if r.reason],
                                     cost_usd=round(sum(r.cost_usd for r in rs), 6),
                                     wall_s=round(sum(r.wall_s for r in rs), 3), infra_errors=len(rs) - len(counted),
                                     infra=classes, **best)
        tasks[task] = TaskSummary(metric=first.metric, direction=first.direction, baseline=first.baseline,
                                  size=first.size, protocol=first.protocol, published=first.published, agents=agents)

    infra.runs = sum(sum(cs.values()) for cs in infra.agents.values())
    for agent in infra.unscored:  # no AUP for it; every other method over all tasks
        infra.unscored[agent].sort()
        for kind in KINDS:
            for table in (scores[kind], per_run[kind]):
                for by_agent in table.values():
                    by_agent.pop(agent, None)
    tau = scoring.tau_max_for(*scores.values(), directions=directions, baselines=baselines)
    aup = {kind: scoring.aup(scores[kind], directions, baselines, tau_max=tau, baseline_name=RECORDED)
           for kind in KINDS}
    k = max((len(v) for ms in per_run[KINDS[0]].values() for v in ms.values()), default=0)  # counted runs
    aup_ci = {kind: scoring.aup_bootstrap(
        per_run[kind], directions, baselines, tau_max=tau, n_boot=BOOTSTRAP.n, confidence=BOOTSTRAP.confidence,
        seed=BOOTSTRAP.seed, baseline_name=RECORDED) for kind in KINDS}
    aup_at = {str(j): {kind: scoring.aup(
        {t: {a: scoring.best_of_k(v[:j], directions[t]) for a, v in ms.items()} for t, ms in per_run[kind].items()},
        directions, baselines, tau_max=tau, baseline_name=RECORDED) for kind in KINDS} for j in range(1, k + 1)}
    return Summary(created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   sessions=sorted({r.session for r in latest}), protocols=sorted({r.protocol for r in latest}),
                   isolation=isolation if isolation is not None else trust.of_records(latest),
                   k=k, tau_max=tau, tasks=tasks, aup=aup, aup_ci=aup_ci, aup_at=aup_at,
                   bootstrap=BOOTSTRAP, infra=infra, cost=cost_mod.build(latest, aup["best_submission"], RECORDED),
                   stats=aggregate.build(records, aup_at, tau, baseline_name=RECORDED))


def write(summary: Summary, path: Path) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(summary.as_dict(), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
