"""Performance profiles and AUP (area under the performance profile), as in MLGym-Bench.

Every agent is a *method*; the task baseline is one more method. For task ``p`` and method ``m``:

* ``m`` is infeasible on ``p`` if it has no score (missing, ``None``, NaN or +-inf), its score is
  negative, or it is worse than the baseline's score (so a negative baseline is itself infeasible).
* Over feasible methods, with ``best`` the best feasible score: ``r = best / s`` for "max" metrics
  and ``r = s / best`` for "min" metrics; ``r_worst`` is the largest feasible ``r``. Infeasible
  methods get ``r = 1.05 * r_worst``.
* ``rho_m(tau)`` is the fraction of tasks with ``log10(r) <= tau``; ``AUP_m`` is the left Riemann
  sum of ``rho_m`` over ``points`` evenly spaced ``tau`` values from 0 to ``tau_max``.

Edge cases (the published definition is silent on them):

* A score equal to the task's best gets ``r = 1`` exactly (also when ``best == 0``). Any other
  score whose ratio would be zero or non-finite (e.g. ``best / 0``, or so large that
  ``1.05 * r`` overflows) is treated as infeasible.
* A baseline of ``None``/NaN/+-inf has no score (it is infeasible) and then nothing counts as
  worse than it: only the other conditions apply on that task.
* As published, infeasible methods do *not* score 0: ``log10(1.05 * r_worst)`` usually lies
  below ``tau_max``, so they earn area there. They never beat a feasible method on a task, and
  score exactly 0 only on tasks where no method is feasible.
* A task with no feasible method gives every method ``r = inf`` there: it adds nothing to any
  profile but still counts in the denominator (the fraction of tasks).

``aup_bootstrap`` gives confidence intervals of AUP@k over seeds (resampling each task's runs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .metric import Metric, check_direction

Scores = Mapping[str, Mapping[str, "float | None"]]
DEFAULT_TAU_MAX = 0.4  # what tau_max_for gives when every r_worst is 1 (log10(ceil(1.05)) = 0.30)


def _ratios(scores: Scores, directions: Mapping[str, str], baselines: Mapping[str, float]):
    """Return (tasks, agent methods, R, r_worst); R has one column per method plus the baseline
    as its last column; r_worst is NaN on tasks without a feasible method."""
    tasks = list(scores)
    methods = list(dict.fromkeys(m for t in tasks for m in scores[t]))
    for t in tasks:
        if t not in directions or t not in baselines:
            raise ValueError(f"task {t!r} lacks a direction or a baseline")
        check_direction(directions[t])
    col = {m: j for j, m in enumerate(methods)}
    s = np.full((len(tasks), len(methods) + 1), np.nan)
    for i, t in enumerate(tasks):
        for m, v in scores[t].items():
            s[i, col[m]] = np.nan if v is None else float(v)
        s[i, -1] = np.nan if baselines[t] is None else float(baselines[t])
    is_max = _is_max(tasks, directions)
    r, r_worst = _ratio_array(s, is_max)
    return tasks, methods, r, r_worst


def _ratio_array(s: np.ndarray, is_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ratios of scores ``s[..., task, method]`` (the baseline as the last method), batched over
    any leading axes; ``is_max`` is ``(tasks, 1)``. Returns ``(R, r_worst[..., task])``."""
    s = np.where(np.isfinite(s), s, np.nan)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        base = s[..., -1:]
        worse = np.where(is_max, s < base, s > base)  # False where the baseline has no score
        feasible = np.isfinite(s) & (s >= 0) & ~worse
        masked = np.where(feasible, s, np.nan)
        best = np.where(is_max, np.max(np.where(feasible, s, -np.inf), axis=-1, keepdims=True),
                        np.min(np.where(feasible, s, np.inf), axis=-1, keepdims=True))
        r = np.where(is_max, best / masked, masked / best)
        r = np.where(feasible & (masked == best), 1.0, r)
        feasible &= np.isfinite(1.05 * r) & (r > 0)
        r = np.where(feasible, r, np.nan)
        any_feasible = feasible.any(axis=-1)
        r_worst = np.where(any_feasible, np.max(np.where(feasible, r, -np.inf), axis=-1), np.nan)
        fill = np.where(any_feasible, 1.05 * r_worst, np.inf)[..., None]
    return np.where(feasible, r, fill), r_worst


def performance_ratios(scores: Scores, directions: Mapping[str, str],
                       baselines: Mapping[str, float], baseline_name: str = "baseline"
                       ) -> tuple[list[str], list[str], np.ndarray]:
    """Return ``(tasks, methods, R)`` where ``R[i, j]`` is the ratio of ``methods[j]`` on
    ``tasks[i]``; the baseline is the last method, named ``baseline_name``."""
    tasks, methods, r, _ = _ratios(scores, directions, baselines)
    if baseline_name in methods:
        raise ValueError(f"a method is already named {baseline_name!r}")
    return tasks, methods + [baseline_name], r


def tau_max_for(*score_sets: Scores, directions: Mapping[str, str],
                baselines: Mapping[str, float]) -> float:
    """``log10`` of the largest ``ceil(1.05 * r_worst)`` over every task of every score set,
    rounded up to one decimal (float noise is rounded away first, so 1.2000000001 gives 1.2).
    Returns ``DEFAULT_TAU_MAX`` (0.4, as if every ``r_worst`` were 1) when no task of any set
    has a feasible method."""
    worst = [w for s in score_sets for w in _ratios(s, directions, baselines)[3] if np.isfinite(w)]
    if not worst:
        return DEFAULT_TAU_MAX
    top = max(math.ceil(round(1.05 * w, 9)) for w in worst)
    return math.ceil(round(math.log10(top) * 10, 9)) / 10


def profile(scores: Scores, directions: Mapping[str, str], baselines: Mapping[str, float],
            tau_max: float | None = None, points: int = 500, baseline_name: str = "baseline"
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return ``(tau, {method: rho(tau)})`` on ``np.linspace(0, tau_max, points)``; ``tau_max``
    defaults to ``tau_max_for(scores, ...)``. The baseline is included as ``baseline_name``."""
    tasks, methods, r = performance_ratios(scores, directions, baselines, baseline_name)
    if tau_max is None:
        tau_max = tau_max_for(scores, directions=directions, baselines=baselines)
    if not tau_max > 0 or points < 2:
        raise ValueError("need tau_max > 0 and points >= 2")
    tau = np.linspace(0.0, tau_max, points)
    with np.errstate(divide="ignore"):
        logr = np.sort(np.log10(r), axis=0)  # per method, ascending over tasks
    n = max(len(tasks), 1)
    rho = {m: np.searchsorted(logr[:, j], tau, side="right") / n for j, m in enumerate(methods)}
    return tau, rho


def aup(scores: Scores, directions: Mapping[str, str], baselines: Mapping[str, float],
        tau_max: float | None = None, points: int = 500, baseline_name: str = "baseline"
        ) -> dict[str, float]:
    """AUP of every method, the baseline (``baseline_name``) included.

    ``scores`` is ``{task: {method: score or None}}`` (a method missing on a task has no score),
    ``directions`` is ``{task: "max" | "min"}`` and ``baselines`` is ``{task: score}``.
    ``AUP_m = sum_i (tau[i+1] - tau[i]) * rho_m(tau[i])``, so each AUP lies in ``[0, tau_max]``.
    Raises ValueError for a method named ``baseline_name``, a task without a direction or a
    baseline, a direction other than "max"/"min", ``tau_max <= 0`` or ``points < 2``.
    """
    tau, rho = profile(scores, directions, baselines, tau_max, points, baseline_name)
    dt = np.diff(tau)
    return {m: float(dt @ p[:-1]) for m, p in rho.items()}


def best_of_k(run_scores: Sequence[float | None], direction: str) -> float | None:
    """Best score over k runs (for AUP@k); ``None`` and NaN runs are skipped, ``None`` if none
    scored."""
    return Metric.of(direction).best(run_scores)


def _is_max(tasks: list[str], directions: Mapping[str, str]) -> np.ndarray:
    """``(tasks, 1)``: True where the task's metric is maximised (``Metric.is_max``)."""
    return np.array([Metric.of(directions[t]).is_max for t in tasks], dtype=bool)[:, None]


RunScores = Mapping[str, Mapping[str, Sequence["float | None"]]]


def aup_bootstrap(run_scores: RunScores, directions: Mapping[str, str], baselines: Mapping[str, float],
                  tau_max: float | None = None, points: int = 500, n_boot: int = 1000,
                  confidence: float = 0.95, seed: int = 0, baseline_name: str = "baseline",
                  draws: int | None = None) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of AUP@k over seeds: ``{method: (low, high)}``.

    ``run_scores`` is ``{task: {method: [score of each run (seed)]}}``. Each of ``n_boot``
    replicates resamples every (task, method)'s runs with replacement (as many as it has), takes
    their best (``best_of_k``) and computes every method's AUP; the interval holds the central
    ``confidence`` of the replicates. The baseline score and ``tau_max`` stay fixed (``tau_max``
    defaults to ``tau_max_for`` the best-of-k scores of all runs, so the point estimate is
    ``aup(best-of-k scores)``). All replicates are computed at once (numpy, no Python loop over
    them); the same ``seed`` gives the same intervals. ``draws=j`` draws at most j of each (task,
    method)'s runs (still with replacement): the interval of AUP@j for j seeds drawn from all of them.
    """
    if baseline_name in {m for t in run_scores for m in run_scores[t]}:
        raise ValueError(f"a method is already named {baseline_name!r}")
    if not 0 < confidence < 1 or n_boot < 1:
        raise ValueError("need 0 < confidence < 1 and n_boot >= 1")
    best = {t: {m: best_of_k(v, directions.get(t, "max")) for m, v in ms.items()} for t, ms in run_scores.items()}
    tasks, methods, _, _ = _ratios(best, directions, baselines)  # checks directions and baselines
    if tau_max is None:
        tau_max = tau_max_for(best, directions=directions, baselines=baselines)
    if not tau_max > 0 or points < 2:
        raise ValueError("need tau_max > 0 and points >= 2")
    T, M = len(tasks), len(methods)
    runs = [[[np.nan if v is None else float(v) for v in run_scores[t].get(m, ())] for m in methods] for t in tasks]
    n = np.array([[len(rs) for rs in row] for row in runs], dtype=np.int64).reshape(T, M)
    kmax = max(int(n.max(initial=0)), 1)
    padded = np.full((T, M, kmax), np.nan)
    for i, row in enumerate(runs):
        for j, rs in enumerate(row):
            padded[i, j, :len(rs)] = rs

    rng = np.random.default_rng(seed)
    draw = np.floor(rng.random((n_boot, T, M, kmax)) * n[..., None]).astype(np.int64)
    picked = np.take_along_axis(np.broadcast_to(padded, (n_boot, T, M, kmax)), draw, axis=-1)
    k = n if draws is None else np.minimum(n, draws)
    picked = np.where(np.arange(kmax) < k[..., None], picked, np.nan)  # only k draws for k runs
    is_max = _is_max(tasks, directions)
    scored = ~np.isnan(picked)
    hi = np.max(np.where(scored, picked, -np.inf), axis=-1)
    lo = np.min(np.where(scored, picked, np.inf), axis=-1)
    s = np.where(scored.any(axis=-1), np.where(is_max, hi, lo), np.nan)
    base = np.array([np.nan if baselines[t] is None else float(baselines[t]) for t in tasks])
    s = np.concatenate([s, np.broadcast_to(base[None, :, None], (n_boot, T, 1))], axis=-1)
    values = _aup_array(_ratio_array(s, is_max)[0], tau_max, points)  # (n_boot, M + 1)
    q = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    return {m: (float(q[0, j]), float(q[1, j])) for j, m in enumerate(methods + [baseline_name])}


def _aup_array(r: np.ndarray, tau_max: float, points: int) -> np.ndarray:
    """AUP from ratios ``r[..., task, method]``: each task adds ``sum of dt[i] over tau[i] >=
    log10(r)`` (a suffix sum of the left Riemann sum of ``aup``), over the number of tasks."""
    tau = np.linspace(0.0, tau_max, points)
    suffix = np.concatenate([np.cumsum(np.diff(tau)[::-1])[::-1], [0.0]])
    with np.errstate(divide="ignore"):
        idx = np.searchsorted(tau[:-1], np.log10(r), side="left")
    return suffix[idx].sum(axis=-2) / max(r.shape[-2], 1)


def aup_batch(s: np.ndarray, tasks: Sequence[str], directions: Mapping[str, str], tau_max: float,
              points: int = 500) -> np.ndarray:
    """AUP of every method from scores ``s[..., task, method]`` (the baseline as the last method,
    NaN for no score), batched over any leading axes (e.g. bootstrap replicates): ``(..., method)``.
    For one set of scores it equals ``aup`` up to float rounding (a suffix sum, not a dot product)."""
    return _aup_array(_ratio_array(np.asarray(s, dtype=float), _is_max(list(tasks), directions))[0], tau_max, points)
