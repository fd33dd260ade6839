"""The summary of a set of run records: per task and agent, and AUP per agent (``summary.json``)."""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path

from .. import scoring, selection
from ..results import GATED_KINDS, SCORE_KINDS, RunRecord
from . import trust

RECORDED = "(recorded baseline)"  # the baseline scores of task.yaml, one more method in AUP
# best attempt: the test score of the attempt with the best dev score; best submission: the final
# artefact's; oracle best attempt: the best test score, selected on test feedback (MLGym's "best
# attempt"): reported, labelled, never gated on
KINDS = SCORE_KINDS
GATED = GATED_KINDS
BOOTSTRAP = {"n": 1000, "confidence": 0.95, "seed": 0}  # the AUP intervals over seeds (aup_ci)


def build(records: list[RunRecord], isolation: dict | None = None) -> dict:
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

    tasks, directions, baselines = {}, {}, {}
    scores = {kind: defaultdict(dict) for kind in KINDS}
    per_run = {kind: defaultdict(dict) for kind in KINDS}  # every run's score, in seed order
    for task, runs in by_task.items():
        first = next(iter(runs.values()))[0]
        directions[task], baselines[task] = first.direction, first.baseline
        tasks[task] = {"metric": first.metric, "direction": first.direction, "baseline": first.baseline,
                       "size": first.size, "protocol": first.protocol, "published": first.published, "agents": {}}
        for agent, rs in runs.items():
            row = {"runs": len(rs), "passed": sum(r.passed for r in rs),
                   "statuses": [r.status for r in rs], "isolation": [r.isolation for r in rs],
                   "reasons": [r.reason for r in rs if r.reason],
                   "cost_usd": round(sum(r.cost_usd for r in rs), 6), "wall_s": round(sum(r.wall_s for r in rs), 3)}
            for kind in KINDS:
                per_run[kind][task][agent] = [getattr(r, kind) for r in rs]
                row[kind] = scores[kind][task][agent] = scoring.best_of_k([getattr(r, kind) for r in rs],
                                                                          first.direction)
            tasks[task]["agents"][agent] = row

    tau = scoring.tau_max_for(*scores.values(), directions=directions, baselines=baselines)
    aup = {kind: scoring.aup(scores[kind], directions, baselines, tau_max=tau, baseline_name=RECORDED)
           for kind in KINDS}
    k = max((len(rs) for runs in by_task.values() for rs in runs.values()), default=0)
    aup_ci = {kind: {m: list(ci) for m, ci in scoring.aup_bootstrap(
        per_run[kind], directions, baselines, tau_max=tau, n_boot=BOOTSTRAP["n"], confidence=BOOTSTRAP["confidence"],
        seed=BOOTSTRAP["seed"], baseline_name=RECORDED).items()} for kind in KINDS}
    aup_at = {str(j): {kind: scoring.aup(
        {t: {a: scoring.best_of_k(v[:j], directions[t]) for a, v in ms.items()} for t, ms in per_run[kind].items()},
        directions, baselines, tau_max=tau, baseline_name=RECORDED) for kind in KINDS} for j in range(1, k + 1)}
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sessions": sorted({r.session for r in latest}),
            "protocols": sorted({r.protocol for r in latest}),
            "isolation": isolation if isolation is not None else trust.of_records(latest),
            "k": k, "tau_max": tau, "tasks": tasks, "aup": aup, "aup_ci": aup_ci, "aup_at": aup_at,
            "bootstrap": BOOTSTRAP}


def write(summary: dict, path: Path) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
