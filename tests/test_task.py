"""task.yaml: schema validation with one-line errors, discovery, and cached data preparation."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import yaml

from conftest import DATA, ROOT
from pytest_mlgym.task import TaskError, discover, load_task


def copy_tiny(tmp_path, name="tiny"):
    dest = tmp_path / name
    shutil.copytree(DATA / "tasks" / "tiny", dest)
    return dest


def edit(folder, **changes):
    yml = folder / "task.yaml"
    raw = yaml.safe_load(yml.read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for p in parents:
            node = node[p]
        if value is ...:
            del node[leaf]
        else:
            node[leaf] = value
    yml.write_text(yaml.safe_dump(raw))
    return yml


@pytest.mark.parametrize("change, field", [
    ({"metric__direction": "up"}, "metric.direction"),
    ({"metric": ...}, "metric"),
    ({"sizes": {}}, "sizes"),
    ({"sizes": {"huge": {"baseline": 1, "tolerance": 0}}}, "sizes.huge.[key]"),
    ({"sizes__lite__baseline": "high"}, "sizes.lite.baseline"),
    ({"sizes__lite__tolerance": -1}, "sizes.lite.tolerance"),
    ({"limits__memory_mb": 0}, "limits.memory_mb"),
    ({"artefact": "../escape.txt"}, "artefact"),
    ({"starter_files": ["/etc/passwd"]}, "starter_files"),
    ({"knobs": [{"name": "LR", "file": "../x.py", "type": "float", "low": 0, "high": 1}]}, "knobs.0.file"),
    ({"id": "Bad Id"}, "id"),
    ({"surprise": 1}, "surprise"),
    ({"description": ...}, "description"),
    ({"knobs": [{"name": "LR", "file": "answer.txt", "type": "float", "low": 1, "high": 0}]}, "knobs.0"),
    ({"knobs": [{"name": "LR", "file": "answer.txt", "type": "float", "low": 0, "high": 1, "log": True}]}, "knobs.0"),
    ({"knobs": [{"name": "MODE", "file": "answer.txt", "type": "choice"}]}, "knobs.0"),
    ({"knobs": [{"name": "LR", "file": "answer.txt", "type": "int", "low": 1, "high": 9}]}, "knobs: LR is not"),
    ({"sample_artefact": "nothing.csv"}, "sample_artefact: workspace/nothing.csv does not exist"),
    ({"package_data": [{"package": "sklearn.datasets", "path": "data"}]}, "package_data.0.package"),
    ({"package_data": [{"package": "sklearn", "path": "/etc/passwd"}]}, "package_data.0.path"),
    ({"package_data": [{"package": "sklearn", "path": "../numpy"}]}, "package_data.0.path"),
    ({"package_data": [{"package": "sklearn", "path": ""}]}, "package_data.0.path"),
    ({"package_data": [{"package": "sklearn", "hidden": True}]}, "package_data.0.hidden"),
    ({"package_data": [{"path": "data"}]}, "package_data.0.package"),
    ({"package_data": {"package": "sklearn"}}, "package_data"),
])
def test_a_broken_field_is_named_in_one_line(tmp_path, change, field):
    yml = edit(copy_tiny(tmp_path), **change)
    with pytest.raises(TaskError) as e:
        load_task(yml.parent)
    msg = str(e.value)
    assert msg.startswith(f"{yml}: {field}") and "\n" not in msg


@pytest.mark.parametrize("text, expected", [
    ("id: [unclosed", "cannot read"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_unreadable_yaml_is_one_line(tmp_path, text, expected):
    folder = copy_tiny(tmp_path)
    (folder / "task.yaml").write_text(text)
    with pytest.raises(TaskError, match=expected) as e:
        load_task(folder)
    assert "\n" not in str(e.value)


def test_files_the_spec_names_must_exist(tmp_path):
    folder = copy_tiny(tmp_path)
    (folder / "private" / "evaluate.py").unlink()
    with pytest.raises(TaskError, match="private/evaluate.py"):
        load_task(folder)
    folder = copy_tiny(tmp_path, "tiny2")
    edit(folder, id="tiny2", starter_files=["missing.py"])
    with pytest.raises(TaskError, match="starter_files: workspace/missing.py does not exist"):
        load_task(folder)
    with pytest.raises(TaskError, match="must equal the folder name"):
        load_task(copy_tiny(tmp_path / "x", "other"))


def test_included_engine_files_are_validated_and_copied_into_the_workspace(tmp_path):
    from pytest_mlgym.task import FAMILY_FILES

    folder = copy_tiny(tmp_path)
    edit(folder, include=["gymnax_ppo.py"])
    task = load_task(folder)
    ws = task.copy_workspace(tmp_path / "ws")
    assert (ws / "gymnax_ppo.py").read_bytes() == (FAMILY_FILES / "gymnax_ppo.py").read_bytes()
    assert sorted(p.name for p in ws.iterdir()) == sorted([*(p.name for p in task.workspace_dir.iterdir()),
                                                          "gymnax_ppo.py"])
    for bad, message in ((["missing.py"], "include: Value error, no file missing.py in"),
                         (["../task.py"], "include: Value error, include names a file of workspace/"),
                         (["gymnax_ppo.py\n"], "include: Value error, include names a file")):
        edit(folder, include=bad)
        with pytest.raises(TaskError, match=message.replace("(", r"\(")):
            load_task(folder)
    edit(folder, include=["gymnax_ppo.py"])
    (folder / "workspace" / "gymnax_ppo.py").write_text("# a second copy\n")
    with pytest.raises(TaskError, match="include: gymnax_ppo.py is in workspace/ too"):
        load_task(folder)


def test_discover_keeps_the_good_tasks_when_one_is_broken(tmp_path):
    copy_tiny(tmp_path)
    edit(copy_tiny(tmp_path, "broken"), id="broken", metric__name="")
    tasks, broken = discover([tmp_path])
    assert [t.id for t in tasks] == ["tiny"] and list(broken) == ["broken"]
    assert "metric.name" in str(broken["broken"])


def test_the_shipped_tasks_are_valid():
    tasks, broken = discover([ROOT / "tasks"])
    assert not broken
    assert {"house_price", "prisoners_dilemma"} <= {t.id for t in tasks}


def test_prepare_runs_once_under_a_lock_and_is_cached(tmp_path):
    folder = copy_tiny(tmp_path)
    (folder / "prepare.py").write_text(
        "import argparse, pathlib, time\n"
        "p = argparse.ArgumentParser(); p.add_argument('--size'); p.add_argument('--out'); a = p.parse_args()\n"
        "out = pathlib.Path(a.out); (out / 'public').mkdir(); (out / 'private').mkdir()\n"
        "time.sleep(0.3)\n"
        "(out / 'public' / 'x.txt').write_text(a.size)\n"
        "with open(pathlib.Path(__file__).parent / 'runs.log', 'a') as f: f.write('run\\n')\n")
    edit(folder, prepare="prepare.py")
    task = load_task(folder)
    results = []
    threads = [threading.Thread(target=lambda: results.append(task.prepare("lite", tmp_path / "cache")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (folder / "runs.log").read_text() == "run\n"  # four callers, one preparation
    assert len(set(results)) == 1 and (results[0].public / "x.txt").read_text() == "lite"
    task.prepare("full", tmp_path / "cache")
    assert (folder / "runs.log").read_text() == "run\nrun\n"  # another size is prepared apart


def test_a_failing_prepare_is_a_one_line_task_error(tmp_path):
    folder = copy_tiny(tmp_path)
    (folder / "prepare.py").write_text("raise SystemExit('no data here: put it in $MLGYM_DATA_DIR')\n")
    edit(folder, prepare="prepare.py")
    with pytest.raises(TaskError, match=r"prepare failed \(exit 1\): no data here"):
        load_task(folder).prepare("lite", tmp_path / "cache")


def test_knobs_are_top_level_assignments_in_workspace_files(tmp_path):
    folder = copy_tiny(tmp_path)
    (folder / "workspace" / "params.py").write_text("LR = 0.1  # learning rate\nclass X:\n    DEPTH = 3\n")
    edit(folder, knobs=[{"name": "LR", "file": "params.py", "type": "float", "low": 1e-4, "high": 1, "log": True}])
    assert load_task(folder).spec.knobs[0].name == "LR"
    edit(folder, knobs=[{"name": "DEPTH", "file": "params.py", "type": "int", "low": 1, "high": 9}])
    with pytest.raises(TaskError, match="knobs: DEPTH is not a top-level assignment"):
        load_task(folder)


def test_missing_full_data_is_a_data_missing_error(tmp_path):
    from pytest_mlgym.task import DataMissing
    folder = copy_tiny(tmp_path)
    (folder / "prepare.py").write_text(
        "import sys\nif sys.argv[sys.argv.index('--size') + 1] == 'full':\n"
        "    print('put cifar-10-batches-py/ in $MLGYM_DATA_DIR/tiny/', file=sys.stderr); sys.exit(3)\n")
    edit(folder, prepare="prepare.py")
    with pytest.raises(DataMissing, match=r"^tiny \(full\): put cifar-10-batches-py/ in \$MLGYM_DATA_DIR/tiny/$"):
        load_task(folder).prepare("full", tmp_path / "cache")


def test_package_data_resolves_at_run_time_to_the_paths_to_mask(tmp_path):
    import sklearn

    from pytest_mlgym import packagedata
    folder = copy_tiny(tmp_path)
    edit(folder, package_data=[{"package": "sklearn", "path": "datasets/data/digits.csv.gz"},
                               {"package": "sklearn", "path": "datasets/images"},
                               {"package": "sklearn", "path": "datasets/descr", "visible": True},
                               {"package": "zz_mlgym_not_installed", "path": "data"}])
    task = load_task(folder)  # an absent package is no error at load: a size may not need it
    here = Path(sklearn.__file__).resolve().parent / "datasets"
    absent = packagedata.would_be("zz_mlgym_not_installed", "data")
    assert task.masked_paths() == (here / "data" / "digits.csv.gz", here / "images", absent)
    assert task.package_paths(visible=True) == (here / "descr",)
    assert not absent.exists() and packagedata.in_site(absent) == ("zz_mlgym_not_installed", "data")
    assert load_task(ROOT / "tasks" / "prisoners_dilemma").masked_paths() == ()


def test_a_declared_path_missing_from_its_installed_package_is_one_line_at_episode_start(tmp_path):
    from pytest_mlgym.env import MLGymEnv
    folder = copy_tiny(tmp_path)
    yml = edit(folder, package_data=[{"package": "sklearn", "path": "datasets/data/iris.csv"},
                                     {"package": "sklearn", "path": "datasets/data/no_such_file.csv"}])
    task = load_task(folder)
    message = rf"^{yml}: package_data.1.path: datasets/data/no_such_file.csv does not exist in the installed package sklearn "
    with pytest.raises(TaskError, match=message) as e:
        task.masked_paths()
    assert "\n" not in str(e.value)
    env = MLGymEnv(task, cache_dir=tmp_path / "cache")
    with pytest.raises(TaskError, match=message):
        env.reset(seed=0)
    env.close()
    edit(folder, package_data=[{"package": "six", "path": "."}])  # a module, not a package folder
    with pytest.raises(TaskError, match=r"package_data.0.path: six is a module .*, not a package folder$"):
        load_task(folder).masked_paths()
