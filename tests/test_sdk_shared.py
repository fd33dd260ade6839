"""pytest_mlgym.sdk: shared workspace files (import_shared), row splits on tiny data, prepare options."""
from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_mlgym.sdk.evaluator import Context, EvaluatorError

MODULE = '''
from __future__ import annotations
from dataclasses import dataclass

@dataclass
class Config:  # a dataclass with string annotations needs its module in sys.modules
    width: int = 3
'''


def task(tmp_path: Path, shared: str = "[model.py]") -> Path:
    folder = tmp_path / "task"
    (folder / "workspace").mkdir(parents=True)
    (folder / "private").mkdir()
    (folder / "private" / "secret").write_text(secrets.token_hex(32))
    (folder / "task.yaml").write_text(f"id: task\nshared: {shared}\n")
    (folder / "workspace" / "model.py").write_text(MODULE)
    return folder


def ctx(folder: Path) -> Context:
    return Context(artefact=folder / "artefact", size="lite", seed=0, task_dir=folder, private_dir=None, public_dir=None)


def test_import_shared_builds_dataclasses_once_and_writes_no_bytecode(tmp_path):
    folder = task(tmp_path)
    module = ctx(folder).import_shared("model.py")
    assert module.Config().width == 3 and sys.modules[module.__name__] is module
    assert ctx(folder).import_shared("model.py") is module  # once per process and path
    assert sorted(p.name for p in (folder / "workspace").iterdir()) == ["model.py"]  # no __pycache__
    other = task(tmp_path / "other")  # the same file name in another task folder is another module
    assert ctx(other).import_shared("model.py") is not module


def test_import_shared_refuses_undeclared_and_missing_files(tmp_path):
    folder = task(tmp_path, shared="[model.py, gone.py]")
    (folder / "workspace" / "train.py").write_text("x = 1\n")
    with pytest.raises(EvaluatorError, match="not declared"):
        ctx(folder).import_shared("train.py")
    with pytest.raises(EvaluatorError, match="shared file missing"):
        ctx(folder).import_shared("gone.py")


def test_a_shared_module_that_fails_is_not_left_half_imported(tmp_path):
    folder = task(tmp_path)
    (folder / "workspace" / "model.py").write_text("raise ValueError('broken')\n")
    with pytest.raises(ValueError):
        ctx(folder).import_shared("model.py")
    assert not [name for name in sys.modules if name.startswith("mlgym_shared_model_")
                and getattr(sys.modules[name], "__file__", "").startswith(str(folder))]


@pytest.mark.parametrize("n", [2, 3, 5, 50])
def test_row_splits_leave_no_split_empty(tmp_path, n):
    folder = task(tmp_path)
    for fraction in (0.0, 0.2, 1.0):
        masks = ctx(folder).row_splits(range(n), dev_fraction=fraction)
        assert masks["dev"].any() and masks["test"].any() and (masks["dev"] ^ masks["test"]).all()
    masks = ctx(folder).row_splits(range(1000))
    assert 150 < masks["dev"].sum() < 250  # about a fifth
    assert (masks["dev"] == ctx(folder).row_splits(range(1000))["dev"]).all()  # fixed for the task


def test_prepare_options_reach_the_build_function(tmp_path):
    folder = tmp_path / "opts"
    folder.mkdir()
    (folder / "prepare.py").write_text(
        "from pytest_mlgym.sdk import prepare\n"
        "def build(ctx):\n"
        "    (ctx.public / 'count.txt').write_text(repr(ctx.options['count']))\n"
        "if __name__ == '__main__':\n"
        "    prepare.run(build, options={'count': (int, 'how many')})\n")
    for argv, expected in (([], "None"), (["--count", "7"], "7")):
        out = tmp_path / f"out{len(argv)}"
        subprocess.run([sys.executable, "prepare.py", "--size", "lite", "--out", str(out), *argv], cwd=folder,
                       check=True, capture_output=True, timeout=60)
        assert (out / "public" / "count.txt").read_text() == expected
