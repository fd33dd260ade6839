"""Check, on any task folder, that the agent never sees a test score before its episode ends.

:func:`check` plays one short episode through the real env and harness: the sample artefact (or
the workspace's own) is validated and submitted. It returns one line per problem: no dev split;
a test-split number (one that differs from every dev number) in an observation, in the env's
info before the episode is over, or in the saved trajectory; a missing test record. Used by
``python -m pytest_mlgym check-task`` and by the shipped tasks' tests.
"""
from __future__ import annotations

import json
import math
import shlex
import tempfile
from pathlib import Path

from ..env import MLGymEnv
from ..task import Task

SEALED_KEYS = {"best_attempt", "best_submission", "oracle_best_attempt", "scores"}


def _forms(value: float) -> set[str]:
    """How a number would read in text: the forms the env and json use."""
    out = {f"{value:.6g}", repr(value), json.dumps(value)}
    if float(value).is_integer():
        out.add(str(int(value)))
    return {s for s in out if len(s.strip("-").replace(".", "")) >= 4}  # too short a form matches anything


def _numbers(metrics: dict) -> set[float]:
    out = set()
    for v in metrics.values():
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
                out.add(float(x))
    return out


def check(task: Task, size: str = "lite", cache_dir: Path | None = None) -> list[str]:
    spec = task.spec
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"mlgym-sealed-{task.id}-") as tmp:
        env = MLGymEnv(task, size=size, max_steps=10, cache_dir=cache_dir or Path(tmp) / "cache")
        seen, infos = [], []
        try:
            obs, info = env.reset(seed=0)
            seen.append(obs)
            infos.append(info)
            actions = []
            if spec.sample_artefact:
                src, dst = shlex.quote(spec.sample_artefact.rstrip("/")), shlex.quote(spec.artefact.rstrip("/"))
                actions.append(f"rm -rf {dst} && cp -r {src} {dst}")
            for action in actions + ["validate", "submit"]:
                obs, _, _, _, info = env.step(action)
                seen.append(obs)
                infos.append(info)
            results = env.results()
            trajectory = json.dumps(env.state.trajectory, default=str)
        finally:
            env.close()
    events = [e for e in results["scores"] if e.score is not None]
    if len(events) != 2:
        return [f"{task.id}: the sample artefact did not score twice: "
                f"{[(e.kind, e.score, e.reason) for e in results['scores']]}"]
    if any(e.dev_score is None for e in events):
        problems.append(f"{task.id}: the evaluator returns no dev split (validate shows the agent nothing)")
    dev = set().union(*(_numbers(e.dev_metrics) for e in events))
    # the baseline's test score is shown on purpose (the task text names it): where the sample artefact is
    # the baseline (the games' strategy.py), its test score is that number, and no leak
    test = set().union(*(_numbers(e.metrics) for e in events)) - dev - {float(task.size(size).baseline)}
    forms = {f: v for v in test for f in _forms(v)}
    for where, text in [(f"observation {i}", o) for i, o in enumerate(seen)] + [("trajectory", trajectory)]:
        leaked = sorted(f for f in forms if f in text)
        if leaked:
            problems.append(f"{task.id}: test-split number(s) {', '.join(leaked[:3])} in the {where}")
    for i, info in enumerate(infos[:-1]):
        if keys := SEALED_KEYS & set(info):
            problems.append(f"{task.id}: the env's info at step {i} holds {', '.join(sorted(keys))} mid-episode")
        text = json.dumps(info, default=str)
        if leaked := sorted(f for f in forms if f in text):
            problems.append(f"{task.id}: test-split number(s) {', '.join(leaked[:3])} in the env's info at step {i}")
    if results["best_submission"] is None:
        problems.append(f"{task.id}: the submission's test score was not recorded")
    return problems
