"""What scoring both splits costs: one evaluator run (dev + test) against the evaluator of before.

    python bench/split_cost.py [--base dcf06d0] [--runs 3] [TASK ...]

For each task, the same artefact (the sample artefact, or the workspace's own when it is the
artefact) is scored through the harness (``evaluation.run_evaluator``: isolated, with the task's
limits) by the task's evaluator at ``--base`` (git: the last commit before the sealed split, one
split) and by today's (dev and test in one run). Prints the median seconds of each and their ratio;
the goal is at most ~1.2x. Needs a git checkout (the old task folders come from ``git archive``).
Tasks whose artefact must be trained first (RL checkpoints, models) are left out unless named.
"""
from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import tarfile
import tempfile
from pathlib import Path

from pytest_mlgym.evaluation import run_evaluator
from pytest_mlgym.task import load_task

ROOT = Path(__file__).resolve().parent.parent
QUICK = ["battle_of_sexes", "blotto", "prisoners_dilemma", "house_price", "image_classification_small",
         "image_classification", "sat_heuristic"]


def old_task(base: str, task_id: str, into: Path) -> Path:
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", base, f"tasks/{task_id}"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        t.extractall(into, filter="data")
    return into / "tasks" / task_id


def artefact_of(task) -> Path:
    spec = task.spec
    name = spec.sample_artefact or spec.artefact
    path = task.workspace_dir / name
    if not path.exists():
        raise SystemExit(f"{task.id}: no sample artefact to score ({path}); name a task that has one")
    return path


def seconds(task, artefact: Path, runs: int, cache: Path) -> tuple[float, object]:
    prepared = task.prepare("lite", cache)
    times, ev = [], None
    for _ in range(runs):
        scratch = Path(tempfile.mkdtemp(prefix="mlgym-bench-"))
        try:
            copy = scratch / Path(task.spec.artefact).name
            (shutil.copytree if artefact.is_dir() else shutil.copy2)(artefact, copy)
            ev = run_evaluator(task, "lite", copy, prepared, scratch, code_hidden=task.masked_paths())
            times.append(ev.seconds)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return statistics.median(times), ev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tasks", nargs="*", default=QUICK)
    ap.add_argument("--base", default="dcf06d0", help="the commit whose evaluators scored one split")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlgym-split-cost-") as tmp:
        tmp = Path(tmp)
        print(f"{'task':28} {'before s':>9} {'now s':>9} {'ratio':>6}  dev / test now")
        ratios = []
        for task_id in args.tasks:
            new = load_task(ROOT / "tasks" / task_id)
            old = load_task(old_task(args.base, task_id, tmp / "old"))
            artefact = artefact_of(new)
            before, _ = seconds(old, artefact_of(old), args.runs, tmp / "cache-old")
            now, ev = seconds(new, artefact, args.runs, tmp / "cache-new")
            ratios.append(now / before)
            print(f"{task_id:28} {before:9.2f} {now:9.2f} {now / before:6.2f}  {ev.dev_score} / {ev.score}"
                  + ("" if ev.valid else f"  (invalid: {ev.reason})"))
        print(f"median ratio {statistics.median(ratios):.2f} (goal: at most ~1.2)")


if __name__ == "__main__":
    main()
