"""Every shipped task passes the generic task checks (pytest_mlgym.testing.task_checks).

The same checks ``python -m pytest_mlgym check-task DIR`` runs on any task folder: task.yaml and
its dev baselines, a deterministic prepare.py, the sample artefact valid and scored on a dev and a
test split, the reference solution (copied in, then `reference_command`, or a precomputed
artefact) beating the baseline, malformed artefacts invalid with a reason, and the baseline
reproducing its recorded scores (marked slow when it takes over 10 s, as the benchmark marks it;
CI's `-m "not slow"` runs the quick ones). Every shipped task must ship a reference solution.
"""
from __future__ import annotations

from pathlib import Path

from pytest_mlgym.testing.task_checks import TaskChecks

ROOT = Path(__file__).resolve().parent.parent


class TestShippedTask(TaskChecks):
    task_dirs = sorted(p.parent for p in (ROOT / "tasks").glob("*/task.yaml"))
    baseline = "slow"
    require_reference = True
