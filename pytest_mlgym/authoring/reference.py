"""``python -m pytest_mlgym measure DIR --reference``: measure a task's reference anchors.

The normalised score's 1 (:mod:`pytest_mlgym.anchors`) is the shipped reference solution's score.
This runs it as the task checks do (a fresh episode; ``reference/`` copied into the workspace, then
``reference_command`` when the task has one, else the precomputed artefact as it is) and scores the
artefact with the trusted evaluator, then writes the test-split score as ``sizes.<size>.reference``
and the dev-split score as ``dev_reference`` (one-line edits, :mod:`.yamledit`). With ``--runs N``
it writes the means. A reference that does not beat the baseline is refused (it would make no
scale); a task without ``reference/`` is a one-line error.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from ..task import Task, TaskError, load_task
from . import yamledit
from .measure import Result


def run_reference(task: Task, size: str = "lite", cache_dir: Path | None = None, seed: int = 0) -> Result:
    """The reference solution's evaluation (a DataMissing for a size whose data is absent propagates)."""
    import time

    from ..env import MLGymEnv
    from ..episode import Episode
    from ..evaluation import EvaluatorFailed, evaluate

    if not (task.path / "reference").is_dir():
        raise TaskError(f"{task.id}: no reference/ solution to measure ({task.path / 'reference'})")
    env = MLGymEnv(task, size=size, max_steps=10, cache_dir=cache_dir)
    episode = Episode.start(env, seed)
    try:
        start = time.monotonic()
        assert env.sandbox is not None  # Episode.start opened it
        env.sandbox.copy_in(task.path / "reference", ".")
        if task.spec.reference_command:
            episode.step(task.spec.reference_command)
        try:
            ev = evaluate(task, size, env.sandbox, env.prepared, hidden=env.hidden, code_hidden=task.masked_paths())
        except EvaluatorFailed as e:
            return Result(None, None, time.monotonic() - start, f"harness error: {e}")
        seconds = time.monotonic() - start
    finally:
        episode.close()
    if not ev.valid:
        return Result(None, None, seconds, ev.reason)
    return Result(ev.score, ev.dev_score, seconds, metrics=ev.metrics, dev_metrics=ev.dev_metrics)


def measure_reference(task_dir: Path, size: str = "lite", runs: int = 1, *, write: bool = True, say=print) -> dict:
    """Run the reference ``runs`` times, print one line per run, write the anchors; return them."""
    task = load_task(task_dir)
    spec = task.size(size)
    metric = task.spec.metric
    tests: list[float] = []
    devs: list[float] = []
    for i in range(runs):
        r = run_reference(task, size)
        if r.test is None:
            raise TaskError(f"{task.id} ({size}): run {i + 1}: the reference's artefact is invalid: {r.reason}")
        dev = f", dev {metric.name} = {r.dev!r}" if r.dev is not None else ", no dev split"
        say(f"{task.id} ({size}) reference run {i + 1}/{runs}: test {metric.name} = {r.test!r}{dev}, {r.seconds:.1f} s")
        tests.append(r.test)
        if r.dev is not None:
            devs.append(r.dev)
    values: dict[str, float | int | bool] = {"reference": statistics.fmean(tests) if runs > 1 else tests[0]}
    if len(devs) == runs and spec.dev_baseline is not None:
        values["dev_reference"] = statistics.fmean(devs) if runs > 1 else devs[0]
    for key, base in (("reference", spec.baseline), ("dev_reference", spec.dev_baseline)):
        if key in values and not metric.better(float(values[key]), float(base or 0)):
            raise TaskError(f"{task.id} ({size}): the reference's {key.replace('_', ' ')} {values[key]!r} does not "
                            f"beat the baseline {base!r} ({metric.word} is better): no scale to normalise on")
    if write:
        yamledit.set_size_values(task.path / "task.yaml", size, values)
        say(f"wrote {task.path / 'task.yaml'}: " + ", ".join(f"sizes.{size}.{k} {v!r}" for k, v in values.items()))
    return {"values": values}
