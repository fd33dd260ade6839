"""Registration: ``gymnasium.make("mlgym/<id>")`` without reading any task folder at import."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium
import pytest

from pytest_mlgym.env import MLGymEnv, register_all
from pytest_mlgym.task import TaskError

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# in a fresh interpreter: discover and load_task raise, and every file opened or folder listed is noted
IMPORT_ONLY = """
import json, sys
seen = []
sys.addaudithook(lambda event, args: event in ("open", "os.scandir", "os.listdir") and seen.append(str(args[0])))
import pytest_mlgym.task as task
def boom(*a, **k):
    raise AssertionError("a task folder was read at import")
task.discover = task.load_task = boom
import gymnasium, pytest_mlgym.env
print(json.dumps({"seen": seen, "ids": sorted(k for k in gymnasium.registry if k.startswith("mlgym/"))}))
"""


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_importing_the_env_lists_the_task_roots_and_reads_no_task_folder():
    roots = [ROOT / "tasks", DATA / "tasks"]
    out = _python(IMPORT_ONLY, MLGYM_TASKS_DIR=os.pathsep.join(map(str, roots)))
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    folders = [str(p.parent) for root in roots for p in root.glob("*/task.yaml")]
    inside = [p for p in got["seen"] if any(p == f or p.startswith(f + os.sep) for f in folders)]
    assert inside == [], inside  # the roots were listed, no task folder opened or listed
    assert {"mlgym/prisoners_dilemma", "mlgym/tiny", "mlgym/split"} <= set(got["ids"])


def test_the_module_form_needs_no_import_and_the_env_checker_is_on():
    code = ("import gymnasium; env = gymnasium.make('pytest_mlgym.env:mlgym/tiny', max_steps=3); "
            "print(type(env.unwrapped).__name__, env.unwrapped.task.id, env.spec.disable_env_checker, "
            "any(type(w).__name__ == 'PassiveEnvChecker' for w in _chain(env)))")
    chain = "def _chain(e):\n    while hasattr(e, 'env'):\n        yield e\n        e = e.env\n"
    out = _python(chain + code, MLGYM_TASKS_DIR=str(DATA / "tasks"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["MLGymEnv", "tiny", "False", "True"]


def test_a_broken_task_fails_its_own_make_and_no_other(tiny, tmp_path):
    root = tmp_path / "roots"
    shutil.copytree(tiny.path, root / "tiny_listed")  # an id no other root holds
    yml = root / "tiny_listed" / "task.yaml"
    yml.write_text(yml.read_text().replace("id: tiny\n", "id: tiny_listed\n"))
    (root / "broken").mkdir()
    (root / "broken" / "task.yaml").write_text("id: broken\nname: [\n")
    (root / "notes").mkdir()  # not a task: registered by name, and make says so
    ids = register_all([root])
    try:
        assert {"mlgym/tiny_listed", "mlgym/broken", "mlgym/notes"} <= set(ids)
        with pytest.raises(TaskError, match="broken"):
            gymnasium.make("mlgym/broken")
        with pytest.raises(TaskError, match="unknown task 'notes'"):
            gymnasium.make("mlgym/notes")
        env = gymnasium.make("mlgym/tiny_listed", cache_dir=tmp_path / "cache")
        assert isinstance(env.unwrapped, MLGymEnv) and env.unwrapped.task.path == root / "tiny_listed"
        env.close()
    finally:
        for env_id in ids:
            if gymnasium.registry[env_id].kwargs.get("roots") == (str(root),):
                del gymnasium.registry[env_id]
