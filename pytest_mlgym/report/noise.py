"""Noise-aware gates (``--mlgym-confidence C``) and this run's pairwise agent comparisons (issue 18).

With ``C``, a gate decides on a one-sided bound at confidence ``C`` instead of a point estimate:

* ``--mlgym-max-regression D`` fails for an agent only when the upper bound of its AUP change
  (this run's best submission against the stored run's, ``paired.compare``: one performance
  profile, a paired stratified bootstrap over seeds) is below ``-D``;
* ``--mlgym-fail-under-aup X`` fails for an agent only when the upper bound of its AUP in this
  run's own table (``scoring.aup_bootstrap`` over its seeds, at the expanded level of
  ``paired.expanded``) is below ``X``.

When the bounds straddle the threshold the data cannot decide: the gate passes (it fails only on
evidence) and says "too few seeds to decide" with ``paired.seeds_needed``'s estimate. With fewer
than 2 counted seeds on a side (the fewest any task has) nothing estimates the noise: the gate
FAILS for that agent (default-deny) and says it needs at least 2 seeds per side. Runs that ended in
infra_error are left out, as the point-estimate gates do, and said.
"""
from __future__ import annotations

from collections import defaultdict
from itertools import combinations

from .. import paired, scoring, selection
from ..results import RunRecord
from .gates import EPS, HEADLINE, Gate, _agents_line
from .summary import BOOTSTRAP, GATED, RECORDED, Summary

MAX_PAIRS = 28  # every pair of 8 agents; more are left out (and counted) in summary.json's ``paired``
NEEDS = "needs at least 2 seeds per side with --mlgym-confidence (none to estimate the noise from)"


def _pct(c: float) -> str:
    return f"{c * 100:g}%"


def _verdict(k: int, estimate: float, threshold: float, lower: float, upper: float, confidence: float,
             fail: str, ok: str) -> tuple[bool, str]:
    """Passed and the verdict: fails only when ``upper`` is below ``threshold``."""
    if upper < threshold - EPS:
        return False, fail
    if lower < threshold - EPS:
        n = paired.seeds_needed(k, estimate, threshold, lower, upper, confidence)
        return True, "too few seeds to decide" + (f" (about {n} seeds per side would)" if n else "")
    return True, ok


def max_regression(comparison: dict, limit: float, stored: str, confidence: float) -> Gate:
    """``--mlgym-max-regression`` with ``--mlgym-confidence``: see the module docstring."""
    name = "--mlgym-max-regression"
    if not comparison["agents"] or not comparison["tasks"]:
        missing = "agent" if not comparison["agents"] else "task"
        return Gate(name, False, f"no {missing} in common with the stored run {stored}: nothing was compared")
    n = len(comparison["tasks"])
    what = (f"AUP (best submission, tau_max {comparison['tau_max']:g}, {n} common task{'s' * (n != 1)}) against "
            f"{stored} at {_pct(confidence)} confidence (one-sided; paired bootstrap over seeds)")
    infra = comparison.get("infra") or {}
    if infra.get("old") or infra.get("new"):
        what += (f" (left out: runs that failed for infrastructure, {infra.get('old', 0)} stored, "
                 f"{infra.get('new', 0)} here)")
    parts, passed = [], True
    for a, p in sorted(comparison["intervals"].items()):
        aup, seeds = p["aup"][HEADLINE], p["seeds"]
        c = aup["change"]
        had = f"seeds {seeds['a']} stored, {seeds['b']} here"
        if min(seeds["a"], seeds["b"]) < 2 or c["upper"] is None:
            passed = False
            parts.append(f"{a} {aup['a']:.3f} -> {aup['b']:.3f} ({c['estimate']:+.3f}; {had}): {NEEDS}")
            continue
        ok, verdict = _verdict(min(seeds["a"], seeds["b"]), c["estimate"], -limit, c["lower"], c["upper"],
                               confidence, f"dropped by more than {limit:g}", f"dropped by at most {limit:g}")
        passed &= ok
        parts.append(f"{a} {aup['a']:.3f} -> {aup['b']:.3f} ({c['estimate']:+.3f}; {_pct(confidence)} interval "
                     f"[{c['low']:+.3f}, {c['high']:+.3f}], upper bound {c['upper']:+.3f}; {had}): {verdict}")
    return Gate(name, passed, f"{what}: {'; '.join(parts)}")


def run_scores(records: list[RunRecord], kind: str) -> dict[str, dict[str, dict[int, float | None]]]:
    """``{agent: {task: {seed: score}}}`` of the latest record per run, infra_error runs left out."""
    out: dict[str, dict[str, dict[int, float | None]]] = defaultdict(lambda: defaultdict(dict))
    for (task, agent, seed), r in sorted(selection.latest_per_run(records).items()):
        if r.status != "infra_error":  # summary.INFRA_RULE
            out[agent][task][seed] = getattr(r, kind)
    return out


def fail_under(summary: Summary | None, records: list[RunRecord], agents: list[str], threshold: float,
               confidence: float) -> Gate:
    """``--mlgym-fail-under-aup`` with ``--mlgym-confidence``: see the module docstring."""
    name = "--mlgym-fail-under-aup"
    if not summary:
        return Gate(name, False, f"no run was recorded in this session, so no AUP to check against {threshold:g}")
    scores = run_scores(records, HEADLINE)
    tasks = sorted(summary.tasks)
    per_run = {t: {a: list(scores[a][t].values()) for a in scores if a not in summary.infra.unscored and t in scores[a]}
               for t in tasks}
    dirs = {t: summary.tasks[t].direction for t in tasks}
    base = {t: summary.tasks[t].baseline for t in tasks}

    def bounds(level: float) -> dict[str, tuple[float, float]]:
        return scoring.aup_bootstrap(per_run, dirs, base, tau_max=summary.tau_max, n_boot=paired.N_BOOT,
                                     confidence=2 * level - 1, seed=BOOTSTRAP.seed, baseline_name=RECORDED)
    what = (f"AUP@{summary.k} (best submission, tau_max {summary.tau_max:g}) at {_pct(confidence)} confidence "
            f"(one-sided; bootstrap over seeds)")
    if note := summary.infra.note():
        what += f" ({note})"
    cache: dict[int, tuple[dict, dict]] = {}
    parts, passed = [], True
    for a in sorted(agents):
        value = summary.aup[HEADLINE].get(a)
        if value is None:
            passed = False
            parts.append(_agents_line({a: None}, summary))
            continue
        k = min((len(scores[a][t]) for t in tasks), default=0)
        if k < 2:
            passed = False
            parts.append(f"{a} {value:.3f} (seeds {k}): {NEEDS}")
            continue
        if k not in cache:  # the levels depend on k only
            cache[k] = bounds(paired.expanded(confidence, k)), bounds(paired.expanded((1 + confidence) / 2, k))
        (lower, upper), (low, high) = cache[k][0][a], cache[k][1][a]
        ok, verdict = _verdict(k, value, threshold, lower, upper, confidence, f"below {threshold:g}",
                               f">= {threshold:g}")
        passed &= ok
        parts.append(f"{a} {value:.3f} ({_pct(confidence)} interval [{low:.3f}, {high:.3f}], upper bound "
                     f"{upper:.3f}; seeds {k}): {verdict}")
    return Gate(name, passed, f"{what}: {'; '.join(parts)}")


def pairwise(records: list[RunRecord], confidence: float, unscored: frozenset[str] = frozenset()) -> dict | None:
    """Every pair of this run's agents (``(recorded baseline)`` is no agent; agents without an AUP
    are left out), each pair on the tasks both have a counted run of, in one performance profile
    (``paired.compare``: ``b - a``, ``a`` first by name), one ``tau_max`` for every pair and both
    kinds. At most ``MAX_PAIRS`` pairs (``left_out`` counts the rest). None with fewer than 2 agents."""
    latest = selection.latest_per_run(records)
    dirs = {r.task: r.direction for r in latest.values()}
    base = {r.task: r.baseline for r in latest.values()}
    scores = {kind: run_scores(records, kind) for kind in GATED}
    agents = sorted(set(scores[HEADLINE]) - unscored)
    pairs = list(combinations(agents, 2))
    if not pairs:
        return None
    kept = pairs[:MAX_PAIRS]
    common = {(a, b): sorted(set(scores[HEADLINE][a]) & set(scores[HEADLINE][b])) for a, b in kept}

    def side(agent: str, tasks: list[str]) -> dict:
        return {kind: {t: scores[kind][agent][t] for t in tasks} for kind in GATED}
    sets = [{t: {m: scoring.best_of_k(list(scores[kind][m][t].values()), dirs[t]) for m in ab} for t in common[ab]}
            for ab in kept for kind in GATED]
    tau = scoring.tau_max_for(*sets, directions=dirs, baselines=base)
    out = []
    for a, b in kept:
        ts = common[(a, b)]
        if ts:
            p = paired.compare(side(a, ts), side(b, ts), dirs, base, tau_max=tau, confidence=confidence,
                               baseline_name=RECORDED)
            out.append({"a": a, "b": b, "tasks_compared": ts, **p.model_dump()})
    return {"confidence": confidence, "tau_max": tau, "method": METHOD, "pairs": out,
            "left_out": len(pairs) - len(kept)}


METHOD = ("b - a (positive: b better), both scored in one performance profile with the recorded baseline; "
          "intervals: paired stratified percentile bootstrap over seeds (scipy.stats.bootstrap; per task, "
          "seeds both have resampled together), expanded for few seeds (Hesterberg); probability of "
          "improvement: Mann-Whitney U / (n m) per task, averaged over tasks")


def lines(comparison: dict | None, pairs: dict | None) -> list[str]:
    """The terminal's compact lines: one per compared agent (stored vs now), one per pair of agents."""
    out = []
    for a, p in sorted(((comparison or {}).get("intervals") or {}).items()):
        out.append(f"{a} (now vs stored): {_line(p)}")
    for p in (pairs or {}).get("pairs", []):
        out.append(f"{p['b']} vs {p['a']}: {_line(p)}")
    if pairs and pairs["left_out"]:
        out.append(f"note: {pairs['left_out']} more pairs of agents not compared (at most {MAX_PAIRS})")
    return out


def _line(p: dict) -> str:
    c, poi, s = p["aup"][HEADLINE]["change"], p["poi"], p["seeds"]
    conf = _pct(p["confidence"])

    def iv(x: dict, fmt: str) -> str:
        if x["estimate"] is None:
            return "-"
        if x["low"] is None:
            return f"{x['estimate']:{fmt}} (no interval: fewer than 2 seeds)"
        return f"{x['estimate']:{fmt}} [{x['low']:{fmt}}, {x['high']:{fmt}}]"
    return (f"AUP change {iv(c, '+.3f')}, P(improvement) {iv(poi, '.2f')} ({conf} intervals; "
            f"seeds {s['a']}/{s['b']}, {s['paired']} paired): {decision(p)}")


def decision(p: dict) -> str:
    """What the AUP change (best submission) lets one say at the pair's confidence: better, worse, or
    no decision yet (the one-sided bounds straddle 0), with the seeds per side that would decide."""
    c, s, conf = p["aup"][HEADLINE]["change"], p["seeds"], _pct(p["confidence"])
    if c["lower"] is None or c["upper"] is None:
        return "no decision (needs at least 2 seeds per side)"
    if c["lower"] > 0:
        return f"{p.get('b', 'this run')} is better with {conf} confidence"
    if c["upper"] < 0:
        return f"{p.get('b', 'this run')} is worse with {conf} confidence"
    k = min(s["a"], s["b"])
    need = paired.seeds_needed(k, c["estimate"], 0.0, c["lower"], c["upper"], p["confidence"])
    more = f" (about {need} seeds per side would)" if need else ""
    return f"no decision at {conf}: the interval holds no change{more}"


def junit(add, comparison: dict | None, pairs: dict | None) -> None:
    """JUnit suite properties: each compared agent's and each pair's AUP change interval and P(improvement)."""
    def props(prefix: str, p: dict) -> None:
        c, poi = p["aup"][HEADLINE]["change"], p["poi"]
        add(f"{prefix}.aup_change", f"{c['estimate']:.6f} [{c['low']}, {c['high']}]")
        add(f"{prefix}.poi", f"{poi['estimate']} [{poi['low']}, {poi['high']}]")
    for a, p in sorted(((comparison or {}).get("intervals") or {}).items()):
        props(f"compare.{a}", p)
    for p in (pairs or {}).get("pairs", []):
        props(f"paired.{p['b']}.vs.{p['a']}", p)
