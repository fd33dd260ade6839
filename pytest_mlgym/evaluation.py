"""Trusted scoring of an artefact, outside the agent's reach.

Only the declared artefact leaves the sandbox, into a scratch folder. The evaluator is the
task folder's own ``private/evaluate.py`` (never the workspace's), run in a separate, isolated
process with limits, on the engine this process imported (whatever is installed elsewhere); it
prints one JSON object of metrics as its last line of output. Agent code the evaluator calls runs
in a sandbox of its own that a :class:`~pytest_mlgym.sandbox.runner.Broker` starts for it.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .sandbox import Sandbox, SandboxError, cgroup, isolation, runner
from .task import Prepared, Task


@dataclass(frozen=True)
class Evaluation:
    """One evaluator run. ``score``/``metrics`` are the sealed *test* split's (the headline, never
    shown to the agent under the sealed protocol); ``dev_score``/``dev_metrics`` the dev split's
    (what ``validate`` shows), None/empty for a task without a dev split."""
    score: float | None  # the task metric on the test split; None when invalid
    metrics: dict = field(default_factory=dict)
    reason: str = ""  # why it is invalid
    seconds: float = 0.0
    dev_score: float | None = None
    dev_metrics: dict = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.score is not None


HARNESS_ERROR_EXIT = 2  # pytest_mlgym.sdk.evaluator's exit code for the harness's own failures


class EvaluatorFailed(SandboxError):
    """The evaluator could not score for a reason that is not the artefact's (a harness error)."""


# The evaluator runs as a script, with its own folder first on sys.path and then this engine (bound
# alone into its sandbox), so `import pytest_mlgym.sdk` finds the harness's copy, never another one.
BOOT = ("import runpy, sys, os; engine = sys.argv[1]; sys.argv = sys.argv[2:]; "
        "sys.path[0:1] = [os.path.dirname(sys.argv[0]), engine]; runpy.run_path(sys.argv[0], run_name='__main__')")


def evaluate(task: Task, size: str, sandbox: Sandbox, prepared: Prepared, *, hidden=(),
             mode: str | None = None, code_hidden=()) -> Evaluation:
    """Score the artefact currently in ``sandbox``; a bad artefact gives an invalid Evaluation."""
    start = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=f"mlgym-eval-{task.id}-"))
    try:
        artefact = scratch / (Path(task.spec.artefact).name or "artefact")
        try:
            sandbox.copy_out(os.path.join(sandbox.workdir, task.spec.artefact), artefact)
        except SandboxError as e:
            return Evaluation(None, reason=f"no valid artefact {task.spec.artefact}: {e}")
        return run_evaluator(task, size, artefact, prepared, scratch, hidden=hidden, mode=mode, start=start,
                             engine=sandbox.evaluator_engine(), code_hidden=code_hidden)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_evaluator(task: Task, size: str, artefact: Path, prepared: Prepared, scratch: Path, *, hidden=(),
                  mode: str | None = None, start: float | None = None, engine=None, code_hidden=()) -> Evaluation:
    """Run the task's evaluator on ``artefact``: isolated on this host, or, with ``engine`` (where the
    sandbox places its evaluator: ``Sandbox.evaluator_engine``, e.g. a Docker Engine), in a container
    of its own there, never the agent's. Agent code it calls runs
    apart from it, with ``code_hidden`` (the task's package data) masked."""
    start = time.monotonic() if start is None else start
    limits = task.spec.limits
    mode = mode or isolation.available()
    code_limits = runner.Limits(memory_mb=limits.memory_mb, pids=limits.pids,
                                cpu_s=limits.evaluation_s * (os.cpu_count() or 1))
    with runner.Broker(scratch, limits=code_limits, hidden=code_hidden, mode=mode, engine=engine) as broker:
        readonly = [task.path, broker.dir, isolation.ENGINE] + [p for p in (prepared.private, prepared.public) if p]
        command = [sys.executable, "-B", "-s", "-E", "-c", BOOT, str(isolation.ENGINE.parent), str(task.evaluator),
                   artefact.name]
        env = isolation.base_env(scratch, {
            "MLGYM_SEED": str(task.spec.evaluation_seed), "MLGYM_SIZE": size, **broker.env(),
            **({"MLGYM_PRIVATE_DATA": str(prepared.private)} if prepared.private else {}),
            **({"MLGYM_PUBLIC_DATA": str(prepared.public)} if prepared.public else {}),
        })
        if engine is not None:
            code, out, err = engine.run_trusted(command, cwd=scratch, env=env, readonly=readonly,
                                                memory_mb=limits.memory_mb, timeout=limits.evaluation_s)
            result = _result(task, code, out, err, start)
        else:
            result = _run_here(task, command, env, scratch, readonly, hidden, mode, start)
        if broker.failures:  # not the agent's failure: the episode ends as a harness error, not "invalid"
            raise SandboxError(f"the harness could not run the agent's code for the evaluator: {broker.failures[0]}")
        return result


def _run_here(task: Task, command: list[str], env: dict, scratch: Path, readonly: list[Path], hidden, mode: str,
              start: float) -> Evaluation:
    limits = task.spec.limits
    argv = isolation.wrap(command, mode=mode, cwd=scratch, writable=[scratch], readonly=readonly, hidden=hidden,
                          tmp_size_mb=isolation.tmp_mb(limits.memory_mb))
    group = cgroup.Group.create(pids=512, memory_mb=limits.memory_mb)  # caps it and, at the end, kills all of it
    preexec = isolation.limiter(limits.memory_mb, limits.file_size_mb, limits.evaluation_s * (os.cpu_count() or 1),
                                group)
    try:
        proc = subprocess.Popen(argv, cwd=scratch, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
                                preexec_fn=preexec)
        try:
            out, err = proc.communicate(timeout=limits.evaluation_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            if group is not None:
                group.kill()
            try:
                proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:  # a process of its own session still holds the pipes
                for pipe in (proc.stdout, proc.stderr):
                    if pipe is not None:
                        pipe.close()
                proc.wait()
            return _result(task, None, "", "", start)
        return _result(task, proc.returncode, out, err, start)
    finally:
        if group is not None:
            group.remove()


def _result(task: Task, code: int | None, out: str, err: str, start: float) -> Evaluation:
    seconds = time.monotonic() - start
    if code is None:
        return Evaluation(None, reason=f"evaluation timed out after {task.spec.limits.evaluation_s:g} s",
                          seconds=seconds)
    if code == HARNESS_ERROR_EXIT:  # the SDK's "not the artefact's fault" (answers missing, no secret)
        last = (err.strip().splitlines() or out.strip().splitlines() or ["no output"])[-1]
        raise EvaluatorFailed(f"{task.id}: the evaluator could not run: {last[:300]}")
    if code != 0:
        last = (err.strip().splitlines() or out.strip().splitlines() or ["no output"])[-1]
        return Evaluation(None, reason=f"evaluator failed (exit {code}): {last[:300]}", seconds=seconds)
    return parse_metrics(out, task.spec.metric.name, seconds)


def parse_metrics(stdout: str, metric: str, seconds: float = 0.0) -> Evaluation:
    """Read the JSON object on the last non-empty line of the evaluator's output: per split
    (``{"dev": {...}, "test": {...}}``, the SDK's protocol) or one flat dict of test metrics."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        return Evaluation(None, reason="evaluator printed no JSON object of metrics", seconds=seconds)
    if "invalid" in result:
        return Evaluation(None, result, reason=str(result["invalid"])[:500], seconds=seconds)
    split = isinstance(result.get("test"), dict)
    metrics = result["test"] if split else result
    dev: dict = result["dev"] if split and isinstance(result.get("dev"), dict) else {}
    bad = _bad(metrics, metric, "test" if split else "")
    if bad or (dev and (bad := _bad(dev, metric, "dev"))):
        return Evaluation(None, metrics, reason=bad, seconds=seconds)
    return Evaluation(float(metrics[metric]), metrics, seconds=seconds,
                      dev_score=float(dev[metric]) if dev else None, dev_metrics=dev)


def _bad(metrics: dict, metric: str, split: str) -> str:
    value = metrics.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"metric '{metric}'{' (' + split + ' split)' if split else ''} missing or not a finite number: {value!r}"
    return ""
