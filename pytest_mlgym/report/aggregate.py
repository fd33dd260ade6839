"""Aggregate statistics beside AUP (``summary.json``'s ``stats``): per agent, the mean and the
interquartile mean (IQM) of the normalised scores over tasks and seeds, per task the mean over
seeds of the raw and the normalised scores, and AUP@j for j = 1..k, each with a bootstrap interval.

The normalised score is :mod:`pytest_mlgym.anchors`' (0 = the baseline, 1 = the reference), from
each run record's own anchors, so ``stats`` is recomputed from records alone. The rules
(``RULE``, also in summary.json and README "Reports"):

* runs that ended in ``infra_error`` are left out (as for AUP); a run without a valid score counts
  as 0 on the normalised scale (no improvement over the baseline: leaving it out would reward
  crashing) and is left out of the raw means (which say how many runs had a score);
* tasks whose size declares no reference anchor are left out of the normalised statistics
  (``unanchored`` lists them);
* an agent's mean and IQM weigh every task equally: with unequal seed counts each task's lowest
  ``seeds`` seeds are used (the fewest any of its tasks has), a tasks x seeds matrix as rliable's;
* intervals are percentile bootstraps (``scipy.stats.bootstrap``) stratified by task: each task's
  seeds are resampled on their own; with one seed there is nothing to resample (no interval);
  AUP@j's interval draws j of each task and agent's runs with replacement
  (``scoring.aup_bootstrap(draws=j)``), the point estimate is ``aup_at`` (the j lowest seeds).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from pydantic import BaseModel, ConfigDict

from .. import scoring, selection
from ..results import GATED_KINDS, RunRecord, ScoreKind

CONFIDENCE, N_BOOT, SEED = 0.95, 2000, 0
IQM_TRIM = 0.25  # scipy.stats.trim_mean(x, 0.25): the mean of the middle half
RULE = ("infra_error runs are left out; a run with no valid score counts as 0 (normalised) and is left out of "
        "the raw means; tasks without a reference anchor are left out of the normalised statistics; each task "
        "weighs equally (its lowest `seeds` seeds); intervals: percentile bootstrap stratified by task "
        "(scipy.stats.bootstrap), none with one seed; AUP@j's interval draws j runs per task and agent")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Estimate(_Model):
    """A point estimate and its bootstrap interval (``low``/``high`` None: nothing to resample)."""

    value: float
    low: float | None = None
    high: float | None = None
    n: int = 0  # the values it is computed from


class AgentStats(_Model):
    """One agent over its anchored tasks: mean and IQM of the normalised scores, per score kind."""

    tasks: int
    seeds: int  # seeds used per task (the fewest of its tasks)
    mean: dict[ScoreKind, Estimate] = {}
    iqm: dict[ScoreKind, Estimate] = {}


class TaskStats(_Model):
    """One agent on one task: mean over seeds of the raw and the normalised scores, per score kind."""

    runs: int
    raw: dict[ScoreKind, Estimate] = {}
    normalised: dict[ScoreKind, Estimate] = {}


class Stats(_Model):
    confidence: float = CONFIDENCE
    n_boot: int = N_BOOT
    seed: int = SEED
    kinds: list[ScoreKind] = list(GATED_KINDS)
    agents: dict[str, AgentStats] = {}
    tasks: dict[str, dict[str, TaskStats]] = {}  # task -> agent -> stats
    aup_at: dict[ScoreKind, dict[str, list[Estimate]]] = {}  # kind -> method -> [AUP@1, ..., AUP@k]
    unanchored: list[str] = []  # tasks left out of the normalised statistics (no reference anchor)
    rule: str = RULE


def _interval(samples: list[np.ndarray], statistic) -> tuple[float | None, float | None]:
    """The stratified percentile bootstrap interval of ``statistic(pooled values)``; None with one seed."""
    if not samples or min(len(s) for s in samples) < 2:
        return None, None
    if all(np.ptp(s) == 0 for s in samples):  # every resample is the same: the interval is the point
        v = float(statistic(np.concatenate(samples)))
        return v, v
    from scipy import stats as sps  # here, not at import: the plugin loads this module

    res = sps.bootstrap(samples, lambda *xs, axis: statistic(np.concatenate(xs, axis=-1), axis=-1),
                        vectorized=True, n_resamples=N_BOOT, confidence_level=CONFIDENCE, method="percentile",
                        rng=np.random.default_rng(SEED))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _mean(x, axis=None):
    return np.mean(x, axis=axis)


def _iqm(x, axis=None):
    from scipy import stats as sps

    return sps.trim_mean(x, IQM_TRIM, axis=axis)


def estimate(samples: list[np.ndarray], statistic) -> Estimate:
    """``statistic`` of the pooled samples (one per task) with its stratified bootstrap interval."""
    low, high = _interval(samples, statistic)
    return Estimate(value=float(statistic(np.concatenate(samples))), low=low, high=high,
                    n=sum(len(s) for s in samples))


def build(records: list[RunRecord], aup_at: dict[str, dict[ScoreKind, dict[str, float]]] | None = None,
          tau_max: float | None = None, baseline_name: str = "baseline") -> Stats:
    """The statistics of the latest record of each run (``aup_at`` and ``tau_max``: the summary's, for
    the AUP@j intervals; without them there are none)."""
    counted = [r for r in selection.latest_runs(records) if r.status != "infra_error"]
    runs: dict[str, dict[str, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(counted, key=lambda r: r.seed):
        runs[r.task][r.agent].append(r)
    out = Stats(unanchored=sorted(t for t, by in runs.items()
                                  if any(r.normalised(r.baseline) is None for rs in by.values() for r in rs)))
    for task, by_agent in sorted(runs.items()):
        out.tasks[task] = {agent: _task_stats(rs, task in out.unanchored) for agent, rs in sorted(by_agent.items())}
    for agent in sorted({a for by in runs.values() for a in by}):
        anchored = [by[agent] for t, by in sorted(runs.items()) if agent in by and t not in out.unanchored]
        if not anchored:
            continue
        seeds = min(len(rs) for rs in anchored)
        row = AgentStats(tasks=len(anchored), seeds=seeds)
        for kind in GATED_KINDS:
            samples = [np.array([_norm(r, kind) for r in rs[:seeds]]) for rs in anchored]
            row.mean[kind], row.iqm[kind] = estimate(samples, _mean), estimate(samples, _iqm)
        out.agents[agent] = row
    if aup_at and tau_max:
        out.aup_at = _aup_at(runs, aup_at, tau_max, baseline_name)
    return out


def _norm(r: RunRecord, kind: ScoreKind) -> float:
    """A run's normalised score of ``kind``; 0 (the baseline) when it has no valid score."""
    value = r.normalised(getattr(r, kind))
    return 0.0 if value is None else value


def _task_stats(rs: list[RunRecord], unanchored: bool) -> TaskStats:
    row = TaskStats(runs=len(rs))
    for kind in GATED_KINDS:
        raw = [v for r in rs if (v := getattr(r, kind)) is not None]
        if raw:
            row.raw[kind] = estimate([np.array(raw, dtype=float)], _mean)
        if not unanchored:
            row.normalised[kind] = estimate([np.array([_norm(r, kind) for r in rs])], _mean)
    return row


def _aup_at(runs: dict[str, dict[str, list[RunRecord]]], points: dict[str, dict[ScoreKind, dict[str, float]]],
            tau_max: float, baseline_name: str) -> dict[ScoreKind, dict[str, list[Estimate]]]:
    """AUP@j (the summary's point estimates) with the interval of drawing j runs per task and agent."""
    first = {t: next(iter(by.values()))[0] for t, by in runs.items()}
    directions = {t: r.direction for t, r in first.items()}
    baselines = {t: r.baseline for t, r in first.items()}
    out: dict[ScoreKind, dict[str, list[Estimate]]] = {}
    for kind in GATED_KINDS:
        per_run = {t: {a: [getattr(r, kind) for r in rs] for a, rs in by.items()} for t, by in runs.items()}
        curves: dict[str, list[Estimate]] = defaultdict(list)
        for j in sorted(points, key=int):
            ci = scoring.aup_bootstrap(per_run, directions, baselines, tau_max=tau_max, n_boot=N_BOOT,
                                       confidence=CONFIDENCE, seed=SEED, baseline_name=baseline_name, draws=int(j))
            for method, value in points[j][kind].items():
                low, high = ci.get(method, (None, None))
                curves[method].append(Estimate(value=value, low=low, high=high, n=int(j)))
        out[kind] = dict(curves)
    return out


def junit_properties(stats: Stats) -> dict[str, str]:
    """``stats.iqm.<agent>``, ``stats.mean.<agent>`` (best submission): ``value [low, high]``."""
    props = {}
    for agent, row in sorted(stats.agents.items()):
        for name in ("iqm", "mean"):
            e = getattr(row, name).get("best_submission")
            if e is not None:
                props[f"stats.{name}.{agent}"] = fmt(e)
    return props


def fmt(e: Estimate | None, digits: int = 3) -> str:
    """``0.512 [0.401, 0.620]``; ``-`` for none; the value alone without an interval."""
    if e is None:
        return "-"
    if e.low is None or e.high is None:
        return f"{e.value:.{digits}f}"
    return f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"
