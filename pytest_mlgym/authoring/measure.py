"""``python -m pytest_mlgym measure DIR [--size lite] [--runs N]``: measure a task's baseline.

Runs the baseline as the built-in baseline agent does (a fresh episode through the engine: the
task's ``baseline_command`` in the sandbox, then the trusted evaluator on the artefact), and writes
into ``task.yaml``'s ``sizes.<size>`` the test-split score as ``baseline`` (exactly as the
evaluator printed it), the dev-split score as ``dev_baseline`` and the episode's wall time
(command + scoring) as ``seconds``, each by a one-line edit that keeps the rest of the file
(:mod:`.yamledit`). With ``--runs N`` (N > 1) it writes the means and prints a tolerance suggested
by the spread of the runs (``--set-tolerance`` writes it too). With ``--seeds N`` it runs seeds
0..N-1 (the episode seed, ``MLGYM_SEED``, which the shipped baselines train with) and writes the
means, ``baseline_std``, the per-seed ``baseline_runs`` and the tolerance derived from them
(:mod:`.spread`); ``--threads T`` / ``--isa NAME`` re-run seed 0 as another CPU would and write
``deterministic`` (bit-identical or not), the difference widening the tolerance.
"""
from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from ..task import SIZES, Task, TaskError, load_task
from . import spread, yamledit


@dataclass(frozen=True)
class Result:
    """One baseline run: the test and dev scores (None when the artefact was invalid)."""
    test: float | None
    dev: float | None
    seconds: float
    reason: str = ""  # why there is no score
    metrics: dict | None = None
    dev_metrics: dict | None = None


def run_baseline(task: Task, size: str = "lite", cache_dir: Path | None = None, seed: int = 0) -> Result:
    """The baseline agent's run, with the evaluation's per-split scores (a DataMissing for a size
    whose data is absent propagates)."""
    from ..env import MLGymEnv
    from ..episode import Episode
    from ..evaluation import EvaluatorFailed, evaluate

    env = MLGymEnv(task, size=size, max_steps=10, cache_dir=cache_dir)
    episode = Episode.start(env, seed)
    try:
        start = time.monotonic()
        failed = ""
        if task.spec.baseline_command:
            obs, *_ = episode.step(task.spec.baseline_command)
            if code := re.search(r"\[exit code (-?\d+)\]\s*$", obs):
                tail = [line for line in obs.splitlines()[:-1] if line.strip()][-1:] or ["no output"]
                failed = f"the baseline command exited with {code.group(1)}: {tail[0][:200]}"
        assert env.sandbox is not None  # Episode.start opened it
        try:
            ev = evaluate(task, size, env.sandbox, env.prepared, hidden=env.hidden, code_hidden=task.masked_paths())
        except EvaluatorFailed as e:  # not the artefact's fault: say so
            return Result(None, None, time.monotonic() - start, f"harness error: {e}")
        seconds = time.monotonic() - start
    finally:
        episode.close()
    if not ev.valid:
        return Result(None, None, seconds, "; ".join(r for r in (failed, ev.reason) if r))
    return Result(ev.score, ev.dev_score, seconds, metrics=ev.metrics, dev_metrics=ev.dev_metrics)


def suggest_tolerance(scores: list[float]) -> float:
    """Three standard deviations of the runs' scores, and at least their range (0 for equal runs)."""
    return spread.tolerance(scores) if len(scores) > 1 else 0.0


def _run(task: Task, size: str, seed: int, label: str, say) -> Result:
    r = run_baseline(task, size, seed=seed)
    if r.test is None:
        raise TaskError(f"{task.id} ({size}): {label}: the baseline's artefact is invalid: {r.reason}")
    metric = task.spec.metric.name
    dev = f", dev {metric} = {r.dev!r}" if r.dev is not None else ", no dev split"
    say(f"{task.id} ({size}) {label}: test {metric} = {r.test!r}{dev}, {r.seconds:.1f} s")
    return r


def measure(task_dir: Path, size: str = "lite", runs: int = 1, *, seeds: int = 1, threads: int | None = None,
            isa: str | None = None, write: bool = True, set_tolerance: bool = False, say=print) -> dict:
    """Run the baseline ``runs`` times (seed 0), or once for each of ``seeds`` seeds, and once more on
    ``threads``/``isa`` when given; print one line per run, write the results; return them."""
    task = load_task(task_dir)
    spec = task.size(size)  # the size must exist
    metric = task.spec.metric.name
    plan = list(range(seeds)) if seeds > 1 else [0] * runs
    results = [_run(task, size, seed, f"seed {seed}" if seeds > 1 else f"run {i + 1}/{runs}", say)
               for i, seed in enumerate(plan)]
    tests = [r.test for r in results if r.test is not None]  # every run has one (_run)
    devs = [r.dev for r in results if r.dev is not None]
    values: dict[str, float | bool | list[float]] = {"baseline": spread.mean(tests)}
    if len(devs) == len(results):
        values["dev_baseline"] = spread.mean(devs)
    else:
        say(f"{task.id}: the evaluator returned no dev split: dev_baseline not written "
            f"(tasks/CONTRACT.md: score() returns {{'dev': ..., 'test': ...}})")
    wall = statistics.fmean(r.seconds for r in results)
    values["seconds"] = round(wall, 1) if wall < 100 else round(wall)
    if spec.published:
        values["published"] = False  # a measured baseline replaces the published figure
    out: dict = {"values": values, "runs": [vars(r) for r in results]}
    cross = cross_dev = 0.0
    if threads is not None or isa is not None:
        where = " ".join(f"{k}={v}" for k, v in (("threads", threads), ("isa", isa)) if v is not None)
        with spread.other_cpu(threads, isa):
            other = _run(task, size, 0, f"seed 0 on {where}", say)
        assert other.test is not None and results[0].test is not None  # _run
        cross = other.test - results[0].test
        if other.dev is not None and results[0].dev is not None:
            cross_dev = other.dev - results[0].dev
        values["deterministic"] = same = cross == 0 and other.dev == results[0].dev
        out["other_cpu"] = vars(other)
        moved = "bit-identical" if same else f"moved by {cross:+.6g} (dev {cross_dev:+.6g})"
        say(f"{task.id}: seed 0 {moved} on {where}: deterministic {str(same).lower()}")
    if len(results) > 1 or cross or cross_dev:
        # the test scores' band, and the dev scores' (validate compares to dev_baseline with it too)
        tol = max(spread.tolerance(tests, cross), spread.tolerance(devs, cross_dev) if len(devs) == len(tests) else 0)
        out["tolerance"] = tol
        now = spec.tolerance
        what = ("3 std of the seeds' test and dev scores, at least their range"
                + (", at least 2x the other-CPU move" if cross or cross_dev else ""))
        say(f"{task.id}: test {metric} over {len(tests)} {'seeds' if seeds > 1 else 'runs'}: mean "
            f"{values['baseline']!r}, std {spread.std(tests):.6g}, range {max(tests) - min(tests):.6g}; "
            f"tolerance {tol:.6g} ({what}; now {now:g})"
            + (" -- the runs agreed to the bit: the tolerance is kept" if tol == 0 else ""))
        if (set_tolerance or seeds > 1 or cross or cross_dev) and tol > 0:
            values["tolerance"] = spread.rounded_up(tol)
    if seeds > 1:
        values["baseline_std"] = spread.std(tests)
        values["baseline_runs"] = tests
    if write:
        yamledit.set_size_values(task.path / "task.yaml", size, values)
        say(f"wrote {task.path / 'task.yaml'}: " + ", ".join(f"sizes.{size}.{k} {v!r}" for k, v in values.items()))
    return out


def measure_new(folder: Path, prog: str) -> bool:
    """After ``new-task``/``import-mlgym`` wrote ``folder``: measure its lite baseline (and its reference
    anchors when it has ``reference/``); False (said) if it fails."""
    try:
        measure(folder, "lite")
    except (TaskError, yamledit.EditError) as e:
        print(f"{prog}: measuring the baseline failed: {e}")
        return False
    if (folder / "reference").is_dir():  # the normalised score's 1 (pytest_mlgym.anchors)
        from .reference import measure_reference
        try:
            measure_reference(folder, "lite")
        except (TaskError, yamledit.EditError) as e:
            print(f"{prog}: measuring the reference failed: {e}")
            return False
    return True


def add_parser(sub) -> None:
    p = sub.add_parser("measure", help="run a task's baseline through the engine and write its scores into task.yaml")
    p.add_argument("dir", type=Path, help="the task folder")
    p.add_argument("--size", default="lite", choices=SIZES)
    p.add_argument("--runs", type=int, default=1, help="run it N times: write the means, suggest a tolerance")
    p.add_argument("--set-tolerance", action="store_true", help="with --runs N > 1: write the suggested tolerance too")
    p.add_argument("--seeds", type=int, default=1, help="run seeds 0..N-1: write means, spread, tolerance")
    p.add_argument("--threads", type=int, help="re-run seed 0 on T threads: write deterministic")
    p.add_argument("--isa", choices=tuple(spread.ISAS), help="re-run seed 0 with this instruction set's kernels")
    p.add_argument("--reference", action="store_true",
                   help="measure the reference solution instead: write sizes.<size>.reference and dev_reference")
    p.add_argument("--dry-run", action="store_true", help="print, write nothing")


def main(args) -> int:
    if args.runs < 1 or args.seeds < 1 or (args.threads is not None and args.threads < 1):
        print("measure: --runs, --seeds and --threads must be at least 1")
        return 2
    if args.runs > 1 and args.seeds > 1:
        print("measure: give --runs (repeats of seed 0) or --seeds (seeds 0..N-1), not both")
        return 2
    try:
        if args.reference:
            from .reference import measure_reference
            measure_reference(args.dir, args.size, args.runs, write=not args.dry_run)
        else:
            measure(args.dir, args.size, args.runs, seeds=args.seeds, threads=args.threads, isa=args.isa,
                    write=not args.dry_run, set_tolerance=args.set_tolerance)
    except (TaskError, yamledit.EditError) as e:
        print(f"measure: {e}")
        return 1
    return 0
