"""The package-data audit (pytest_mlgym.testing.package_audit): a task's prepare.py must declare, in
task.yaml's package_data, every installed package data file it reads."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import DATA, ROOT
from pytest_mlgym.task import TaskError, discover, load_task
from pytest_mlgym.testing.package_audit import audit_prepare, is_data

SHIPPED = sorted(t.id for t in discover([ROOT / "tasks"])[0] if t.spec.prepare)


@pytest.mark.parametrize("task_id", SHIPPED)
def test_every_shipped_prepare_declares_the_package_data_it_reads(task_id):
    audit = audit_prepare(load_task(ROOT / "tasks" / task_id), "lite")
    assert not audit.problems(), "\n".join(audit.problems())


def reader(tmp_path: Path, body: str, package_data=None) -> Path:
    """The tiny task with a prepare.py running ``body`` (and the given package_data)."""
    folder = tmp_path / "tiny"
    shutil.copytree(DATA / "tasks" / "tiny", folder)
    (folder / "prepare.py").write_text(textwrap.dedent("""\
        import argparse, os, subprocess, sys
        ap = argparse.ArgumentParser(); ap.add_argument("--size"); ap.add_argument("--out")
        out = ap.parse_args().out
        os.makedirs(os.path.join(out, "public")); os.makedirs(os.path.join(out, "private"))
        """) + textwrap.dedent(body))
    raw = yaml.safe_load((folder / "task.yaml").read_text())
    raw["prepare"] = "prepare.py"
    if package_data is not None:
        raw["package_data"] = package_data
    (folder / "task.yaml").write_text(yaml.safe_dump(raw))
    return folder


IRIS = """
    from sklearn.datasets import load_iris
    load_iris()
"""


def test_undeclared_package_data_is_named_with_the_task_and_the_file(tmp_path):
    audit = audit_prepare(load_task(reader(tmp_path, IRIS)))
    assert [p.name for p in audit.undeclared] == ["iris.csv", "iris.rst"], audit.opened
    first = audit.problems()[0]
    assert first.startswith("tiny: prepare.py --size lite reads ") and "sklearn/datasets/data/iris.csv" in first
    assert "{package: sklearn, path: datasets/data/iris.csv}" in first and "\n" not in first


def test_declared_files_and_folders_hidden_or_visible_cover_what_is_read(tmp_path):
    declared = [{"package": "sklearn", "path": "datasets/data"},
                {"package": "sklearn", "path": "datasets/descr/iris.rst", "visible": True}]
    audit = audit_prepare(load_task(reader(tmp_path, IRIS, declared)))
    assert len(audit.opened) == 2 and not audit.problems()


def test_a_python_child_of_the_prepare_is_audited_too(tmp_path):
    body = """
        subprocess.run([sys.executable, "-c", "import importlib.util, pathlib; "
                        "d = pathlib.Path(importlib.util.find_spec('mlxtend').submodule_search_locations[0]); "
                        "(d / 'data' / 'data' / 'wine.csv').read_bytes()"], check=True)
    """
    audit = audit_prepare(load_task(reader(tmp_path, body)))
    assert [p.name for p in audit.undeclared] == ["wine.csv"]


def test_code_and_metadata_are_not_data(tmp_path):
    site = Path("/x/site-packages")
    for name in ("pkg/mod.py", "pkg/__pycache__/mod.cpython-311.pyc", "pkg/_c.cpython-311-x86_64-linux-gnu.so",
                 "pkg.libs/libgomp.so.1.0.0", "distutils-precedence.pth", "pkg-1.0.dist-info/METADATA",
                 "pkg/_repr_html/estimator.css"):
        assert not is_data(site / name), name
    for name in ("pkg/data/table.csv.gz", "pkg/model/model.safetensors", "pkg/texts/a.txt"):
        assert is_data(site / name), name
    # importing numpy, pandas and scikit-learn reads nothing the audit counts as data
    audit = audit_prepare(load_task(reader(tmp_path, "import numpy, pandas, sklearn.linear_model\n")))
    assert audit.opened == (), audit.opened


def test_a_failing_prepare_is_one_line(tmp_path):
    with pytest.raises(TaskError, match=r"^tiny: prepare.py --size lite failed \(exit 1\): RuntimeError: boom$"):
        audit_prepare(load_task(reader(tmp_path, "raise RuntimeError('boom')\n")))
