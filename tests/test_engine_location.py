"""The evaluator imports the engine the harness imported, however it was installed or run.

A second checkout run with ``python3 -m pytest`` imports its own ``pytest_mlgym`` (its root is on
sys.path), while the installed one (``pip install -e`` of the first checkout) points elsewhere;
evaluators run with ``-E -s`` in a sandbox that shows neither checkout, so they must be handed
the harness's copy explicitly. Here the harness runs from a copy of the package in another
folder, and an evaluator reports which engine it imported.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tasks" / "tiny"

EVALUATOR = '''
import json, sys
import pytest_mlgym, pytest_mlgym.sdk.untrusted
print(json.dumps({"score": 1.0, "engine": pytest_mlgym.__file__, "marker": getattr(pytest_mlgym, "MARKER", None)}))
'''

HARNESS = '''
import json, sys, tempfile
from pathlib import Path
import pytest_mlgym
from pytest_mlgym.evaluation import run_evaluator
from pytest_mlgym.task import load_task
task = load_task(Path(sys.argv[1]))
scratch = Path(tempfile.mkdtemp())
(scratch / "answer.txt").write_text("1")
engine = None
if sys.argv[2] == "docker":  # the docker backend scores in a container of its own
    from pytest_mlgym.sandbox import docker
    engine = docker.engine_at()
ev = run_evaluator(task, "lite", scratch / "answer.txt", task.prepare("lite"), scratch, engine=engine)
print(json.dumps({"harness": pytest_mlgym.__file__, "metrics": ev.metrics, "reason": ev.reason}))
'''


@pytest.mark.parametrize("mode", ["bwrap", "none", pytest.param("docker", marks=pytest.mark.docker)])
def test_the_evaluator_imports_the_harness_engine(tmp_path, mode):
    from pytest_mlgym.sandbox import SandboxError, isolation
    if mode == "bwrap" and isolation.best() != "bwrap":
        pytest.skip("bubblewrap does not work here (apt-get install bubblewrap)")
    if mode == "docker":
        from pytest_mlgym.sandbox import docker
        try:
            docker.check()
        except SandboxError as e:
            pytest.skip(f"docker backend unavailable: {e} (start an engine: bash docker/start-engine)")
    clone = tmp_path / "other-checkout"
    shutil.copytree(ROOT / "pytest_mlgym", clone / "pytest_mlgym", ignore=shutil.ignore_patterns("__pycache__"))
    with open(clone / "pytest_mlgym" / "__init__.py", "a") as f:
        f.write("\nMARKER = 'the other checkout'\n")
    task = tmp_path / "tasks" / "tiny"
    shutil.copytree(TINY, task)
    (task / "private" / "evaluate.py").write_text(EVALUATOR)
    env = {**os.environ, "PYTHONPATH": str(clone), **({} if mode == "docker" else {"MLGYM_ISOLATION": mode})}
    proc = subprocess.run([sys.executable, "-c", HARNESS, str(task), mode], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["harness"].startswith(str(clone)), out  # the harness runs the other checkout ...
    assert out["metrics"].get("marker") == "the other checkout", out  # ... and so does its evaluator
    assert out["metrics"]["engine"].startswith(str(clone)), out
