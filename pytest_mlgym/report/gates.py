"""CI gates on a run's AUP: ``--mlgym-fail-under-aup X`` and ``--mlgym-compare OLD --mlgym-max-regression D``.

The headline number is AUP@k of the *best submission* (the artefact a run ends with), as in
MLGym-Bench; best attempt is reported alongside but never gated.

* ``fail_under``: every agent under test (each agent with a run recorded in this session, and
  each agent named with ``--agent``, the built-in ``baseline`` included) must have an AUP of at
  least X in this session's own summary (the table printed at the end). An agent named but with
  no run recorded fails the gate; ``(recorded baseline)``, the reference method, is never gated.
* ``compare``: a stored run (the last session of a ``results.jsonl`` other than this one) and
  this session, on the tasks both have (same size), agents matched by name, seeds restricted to
  those both runs used for that agent (so AUP@k has the same k). For each matched agent the
  stored runs and this session's runs are scored as two methods of ONE performance profile with
  the recorded baseline (this session's task.yaml numbers) as the reference method, and one
  ``tau_max`` shared by every agent and both score kinds. Only scores in one profile are
  comparable: scored apart, an agent that is the best method on a task gets ratio 1 whatever
  its score, and a drop from 0.95 to 0.91 would not show. Tasks, agents, seeds or baselines that
  differ between the runs are reported, never silently dropped.
* ``max_regression``: the comparison fails when an agent's AUP (best submission) dropped by more
  than D.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .. import paired, scoring, selection
from ..compute import hardware_note
from ..metric import Metric
from ..results import ResultsStore, RunRecord, ScoreKind
from .summary import GATED, RECORDED, Summary

HEADLINE: ScoreKind = "best_submission"
EPS = 1e-9  # float noise: a drop of exactly D passes


@dataclass
class Gate:
    name: str  # the flag, e.g. --mlgym-fail-under-aup
    passed: bool
    message: str  # one line

    @property
    def line(self) -> str:
        return f"{'PASSED' if self.passed else 'FAILED'} {self.name}: {self.message}"

    def as_dict(self) -> dict:
        return {"gate": self.name, "passed": self.passed, "message": self.message}


class StoredRunError(ValueError):
    pass


def stored_run(path: Path, exclude_session: str | None = None) -> tuple[str, list[RunRecord]]:
    """The stored run to compare with: the last session recorded in ``path`` (a ``results.jsonl``, or
    a report folder holding one), other than ``exclude_session`` (this session, when it appends to
    the same file)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.jsonl"
    if not path.is_file():
        raise StoredRunError(f"{path}: no such file (give a results.jsonl or the report folder holding one)")
    records = ResultsStore(path).read()
    session = selection.last_session(records, exclude=exclude_session)
    if session is None:
        raise StoredRunError(f"{path} holds no run records")
    return session, selection.in_sessions(records, [session])


def _agents_line(values: dict[str, float | None], summary: Summary | None = None) -> str:
    rows = [(a, row) for t in summary.tasks.values() for a, row in t.agents.items()] if summary else []
    recorded, counted = {a for a, _ in rows}, {a for a, row in rows if row.runs > row.infra_errors}

    def value(a: str, v: float | None) -> str:
        if v is not None:
            return f"{v:.3f}"
        if a not in recorded:
            return "no run recorded"
        if a not in counted:
            return "no run counted (every run failed for infrastructure)"
        unscored = summary.infra.unscored.get(a) if summary else None
        if unscored:
            return f"not scored (every run on {', '.join(unscored)} failed for infrastructure)"
        return "no AUP"
    return ", ".join(f"{a} {value(a, v)}" for a, v in sorted(values.items()))


def fail_under(summary: Summary | None, agents: list[str], threshold: float) -> Gate:
    """Every agent under test (``agents``) must reach AUP >= threshold (best submission)."""
    name = "--mlgym-fail-under-aup"
    if not summary:
        return Gate(name, False, f"no run was recorded in this session, so no AUP to check against {threshold:g}")
    aup = summary.aup[HEADLINE]
    values = {a: aup.get(a) for a in agents}
    low = {a: v for a, v in values.items() if v is None or v < threshold - EPS}
    what = f"AUP@{summary.k} (best submission, tau_max {summary.tau_max:g})"
    left_out = f" ({note})" if (note := summary.infra.note()) else ""  # never a number that excluded runs silently
    if low:
        return Gate(name, False, f"{what} below {threshold:g}: {_agents_line(low, summary)}{left_out}")
    return Gate(name, True, f"{what} of every agent >= {threshold:g}: {_agents_line(values)}{left_out}")


def _best(records: list[RunRecord], kind: str, direction: str) -> float | None:
    return scoring.best_of_k([getattr(r, kind) for r in records], direction)


def compare(old: list[RunRecord], new: list[RunRecord], confidence: float = 0.95) -> dict:
    """Compare a stored run with this one (see the module docstring). Returns a JSON-able dict:
    ``tasks`` (compared), ``rows`` (per task and agent), ``aup`` (per agent: old, new, change, per
    score kind), ``tau_max``, ``notes`` (what differs between the runs and was left out), and
    ``intervals`` (per agent: ``paired.compare`` of the stored runs (a) and this run's (b) at
    ``confidence``, the same AUP point estimates with their intervals)."""
    notes: list[str] = []
    (old, n_old), (new, n_new) = _without_infra(old), _without_infra(new)
    infra = {"old": n_old, "new": n_new}
    if n_old or n_new:  # summary.INFRA_RULE: an infra-failed run says nothing about the agent
        notes.append(f"runs that failed for infrastructure (infra_error), left out: {n_old} stored, {n_new} here")
    if hw := hardware_note([r.compute for r in new], [r.compute for r in old]):  # compute.py: never compared blindly
        notes.append(hw)
    sizes = {r.size for r in new}
    old_other = sorted({f"{r.task} ({r.size})" for r in old if r.size not in sizes})
    if old_other and sizes:
        notes.append(f"stored runs of another size, not compared: {', '.join(old_other)}")
    old = [r for r in old if r.size in sizes] if sizes else old

    old_by, new_by = selection.latest_per_run(old), selection.latest_per_run(new)  # as the summary does
    old_tasks, new_tasks = {k[0] for k in old_by}, {k[0] for k in new_by}
    old_agents, new_agents = {k[1] for k in old_by}, {k[1] for k in new_by}
    directions, baselines, metrics = {}, {}, {}
    for r in new_by.values():
        directions[r.task], baselines[r.task], metrics[r.task] = r.direction, r.baseline, r.metric
    old_meta = {r.task: r for r in old_by.values()}
    tasks = []
    for t in sorted(old_tasks & new_tasks):
        o = old_meta[t]
        if (o.metric, o.direction) != (metrics[t], directions[t]):
            notes.append(f"task {t}: metric {o.metric} ({o.direction}) in the stored run, {metrics[t]} "
                         f"({directions[t]}) here: not compared")
            continue
        if o.baseline != baselines[t]:
            notes.append(f"task {t}: recorded baseline {o.baseline:g} in the stored run, {baselines[t]:g} here "
                         f"(both runs are scored against {baselines[t]:g})")
        tasks.append(t)
    if only := sorted(old_tasks - new_tasks):
        notes.append(f"tasks in the stored run only, not compared: {', '.join(only)}")
    if only := sorted(new_tasks - old_tasks):
        notes.append(f"tasks in this run only, not compared: {', '.join(only)}")
    if only := sorted(old_agents - new_agents):
        notes.append(f"agents in the stored run only, not compared: {', '.join(only)}")
    if only := sorted(new_agents - old_agents):
        notes.append(f"agents in this run only, not compared: {', '.join(only)}")

    agents = sorted(old_agents & new_agents)
    seeds = {}
    for a in agents:
        so = {k[2] for k in old_by if k[1] == a and k[0] in tasks}
        sn = {k[2] for k in new_by if k[1] == a and k[0] in tasks}
        seeds[a] = so & sn
        if so != sn:
            notes.append(f"agent {a}: seeds {_seeds(so)} in the stored run, {_seeds(sn)} here: "
                         f"compared on {_seeds(so & sn) or 'none'}")

    runs: dict[str, dict[tuple[str, str], list[RunRecord]]] = {side: defaultdict(list) for side in ("old", "new")}
    for side, by in (("old", old_by), ("new", new_by)):
        for (t, a, seed), r in by.items():
            if t in tasks and a in agents and seed in seeds[a]:
                runs[side][(t, a)].append(r)
    rows: list[dict] = []
    pairs: dict[str, dict[str, dict[str, dict[str, float | None]]]] = {kind: {} for kind in GATED}
    for a in agents:
        for kind in GATED:
            pairs[kind][a] = {t: {"old": _best(runs["old"][(t, a)], kind, directions[t]),
                                  "new": _best(runs["new"][(t, a)], kind, directions[t])} for t in tasks}
        for t in tasks:
            was, now = pairs[HEADLINE][a][t]["old"], pairs[HEADLINE][a][t]["new"]
            rows.append({"task": t, "agent": a, "metric": metrics[t], "direction": directions[t],
                         "baseline": baselines[t], "old": was, "new": now, "change": _change(was, now, directions[t]),
                         "runs": [len(runs["old"][(t, a)]), len(runs["new"][(t, a)])]})
    dirs = {t: directions[t] for t in tasks}
    base = {t: baselines[t] for t in tasks}
    sets = [pairs[kind][a] for kind in GATED for a in agents]
    tau = scoring.tau_max_for(*sets, directions=dirs, baselines=base) if tasks else scoring.DEFAULT_TAU_MAX
    aup: dict[str, dict[str, dict[str, float]]] = {}  # agent -> kind -> old, new, change; empty with no task in common
    for a in agents if tasks else ():
        aup[a] = {}
        for kind in GATED:
            v = scoring.aup(pairs[kind][a], dirs, base, tau_max=tau, baseline_name=RECORDED)
            aup[a][kind] = {"old": v["old"], "new": v["new"], "change": v["new"] - v["old"]}
    def seed_scores(name: str, a: str) -> dict[str, dict[str, dict[int, float | None]]]:
        return {kind: {t: {r.seed: getattr(r, kind) for r in runs[name][(t, a)]} for t in tasks} for kind in GATED}
    intervals = {a: paired.compare(seed_scores("old", a), seed_scores("new", a), dirs, base, tau_max=tau,
                                   confidence=confidence, baseline_name=RECORDED).model_dump()
                 for a in (agents if tasks else ())}
    k = {a: len(seeds[a]) for a in agents}
    return {"tasks": tasks, "agents": agents, "seeds": {a: sorted(s) for a, s in seeds.items()}, "k": k,
            "tau_max": tau, "rows": rows, "aup": aup, "notes": notes, "infra": infra, "intervals": intervals}


def _without_infra(records: list[RunRecord]) -> tuple[list[RunRecord], int]:
    """``records`` less the runs whose latest record ended in infra_error, and how many those were."""
    failed = {k for k, r in selection.latest_per_run(records).items() if r.status == "infra_error"}
    return [r for r in records if selection.run_key(r) not in failed], len(failed)


def _seeds(s: set[int]) -> str:
    return ",".join(map(str, sorted(s)))


def _change(old: float | None, new: float | None, direction: str) -> str:
    if old is None and new is None:
        return "no score in either"
    if new is None:
        return "worse (no score now)"
    if old is None:
        return "better (no score before)"
    if new == old:
        return "same"
    better = Metric.of(direction).better(new, old)
    rel = f" ({(new - old) / abs(old):+.1%})" if old else ""
    return ("better" if better else "worse") + rel


def max_regression(comparison: dict, limit: float, stored: str) -> Gate:
    """Fail when an agent's AUP (best submission, in the comparison's joint profile) dropped by more
    than ``limit``; with no agent or task in common there is nothing to compare, which fails too."""
    name = "--mlgym-max-regression"
    if not comparison["agents"] or not comparison["tasks"]:
        missing = "agent" if not comparison["agents"] else "task"
        return Gate(name, False, f"no {missing} in common with the stored run {stored}: nothing was compared")
    changes = {a: v[HEADLINE] for a, v in comparison["aup"].items()}
    what = (f"AUP (best submission, tau_max {comparison['tau_max']:g}, {len(comparison['tasks'])} common "
            f"task{'s' * (len(comparison['tasks']) != 1)}) against {stored}")
    infra = comparison.get("infra") or {}
    if infra.get("old") or infra.get("new"):  # never a number that excluded runs silently
        what += (f" (left out: runs that failed for infrastructure, {infra.get('old', 0)} stored, "
                 f"{infra.get('new', 0)} here)")
    def fmt(items):
        return ", ".join(f"{a} {c['old']:.3f} -> {c['new']:.3f} ({c['change']:+.3f})" for a, c in items)
    bad = [(a, c) for a, c in sorted(changes.items()) if c["change"] < -limit - EPS]
    if bad:
        return Gate(name, False, f"{what} dropped by more than {limit:g}: {fmt(bad)}")
    return Gate(name, True, f"{what} dropped by at most {limit:g}: {fmt(sorted(changes.items()))}")
