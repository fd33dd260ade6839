"""A task's prepare.py and evaluator run as the harness runs them, for the task's own tests.

    from pytest_mlgym.testing.scripts import evaluator_result, run_prepare

    proc = run_prepare(TASK, out, "full", data_dir=fixture)         # a CompletedProcess
    result = evaluator_result(TASK, scratch, "submission.csv", {"MLGYM_PRIVATE_DATA": str(private)})

:func:`evaluator_result` runs ``private/evaluate.py ARTEFACT`` in ``cwd`` (a scratch folder holding
the artefact), checks that it exited 0 and that an ``invalid`` reason is one non-empty line, and
returns the JSON object of its last stdout line. No pytest import.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_prepare(task_dir: Path, out: Path, size: str, data_dir: Path | None = None, *extra: str,
                env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python prepare.py --size SIZE --out OUT`` in the task folder, with ``MLGYM_DATA_DIR`` set
    to ``data_dir`` (and unset without it)."""
    run_env = {k: v for k, v in os.environ.items() if k != "MLGYM_DATA_DIR"}
    if data_dir is not None:
        run_env["MLGYM_DATA_DIR"] = str(data_dir)
    run_env.update(env or {})
    return subprocess.run([sys.executable, "prepare.py", "--size", size, "--out", str(out), *extra],
                          cwd=task_dir, env=run_env, capture_output=True, text=True, timeout=timeout)


def evaluator_result(task_dir: Path, cwd: Path, artefact: str, env: dict | None = None,
                     timeout: float = 60) -> dict:
    proc = subprocess.run([sys.executable, str(Path(task_dir) / "private" / "evaluate.py"), artefact], cwd=cwd,
                          env={**os.environ, "MLGYM_SEED": "0", **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "invalid" in result:
        assert result["invalid"] and "\n" not in result["invalid"], result
    return result
