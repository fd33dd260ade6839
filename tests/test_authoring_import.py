"""import-mlgym on a small MLGym-layout checkout this test writes itself (our own content, in MLGym's
layout and conventions: configs/tasks/<name>.yaml, configs/datasets/<name>.yaml, data/<name>/ with an
evaluate.py that prints JSON metrics, mlgym/evaluation/utils.py's TASKS table), then check-task."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_mlgym.__main__ import main
from pytest_mlgym.authoring.mlgym_import import snake
from pytest_mlgym.task import load_task

ROOT = Path(__file__).resolve().parent.parent

GAME_CONFIG = """\
id: guessGame
name: Guess the rival
description: |-
  Each round you and a rival each pick 0, 1 or 2; you win the round when your pick is one more
  (mod 3) than the rival's. Change `move(history)` in mover.py; keep its name and signature.
task_entrypoint: PythonSubmissionTasks
training_timeout: 600
starter_code:
- data/guessGame/rival.py
- data/guessGame/evaluate.py
- data/guessGame/mover.py
baseline_paths:
- evaluate.py
baseline_scores:
- Score: 0.33
evaluation_paths:
- evaluate.py
evaluation_read_only: true
memory_path: data/guessGame/memory.json
"""
GAME_EVALUATE = """\
import json
import random

from mover import move
from rival import rival_move

wins = 0
for game in range(300):
    history = []
    for _ in range(10):
        mine, theirs = move(history), rival_move(history)
        if mine not in (0, 1, 2):
            raise ValueError("a move is 0, 1 or 2")
        wins += mine == (theirs + 1) % 3
        history.append((mine, theirs))
print(json.dumps({"Score": wins / 3000}))
"""
GAME_MOVER = "import random\n\n\ndef move(history):\n    return random.randrange(3)\n"
GAME_RIVAL = "import random\n\n\ndef rival_move(history):\n    return 0 if random.random() < 0.7 else random.randrange(3)\n"

HOUSE_CONFIG = """\
id: tinyHouse
name: Tiny house prices
description: |-
  Predict Price from Area. This task uses the following dataset(s):
  {dataset_docs}
  SUBMISSION FORMAT: write submission.csv (Id,Price).
dataset_configs:
- datasets/tinyHouse.yaml
task_entrypoint: CSVSubmissionTasks
training_timeout: 600
starter_code:
- data/tinyHouse/baseline.py
- data/tinyHouse/evaluate.py
baseline_paths:
- baseline.py
baseline_scores:
- rmse: 9.0
  r2: 0.5
evaluation_paths:
- evaluate.py
"""
HOUSE_DATASET = """\
name: TinyHouse
description: |-
  Id, Area (square metres), Price (thousands).
data_path: data/tinyHouse/data
is_local: true
train_split: {name: train, file_regex: ./data/train*}
test_split: {name: test, file_regex: ./data/test*}
"""
HOUSE_EVALUATE = """\
import argparse
import csv
import json
import math


def column(path, name):
    with open(path) as f:
        return [float(row[name]) for row in csv.DictReader(f)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--submission_file")
    args = parser.parse_args()
    y = column('/home/agent/workspace/data/answer.csv', "Price")
    p = column(args.submission_file, "Price")
    mean = sum(y) / len(y)
    sse = sum((a - b) ** 2 for a, b in zip(y, p))
    print(json.dumps({"rmse": math.sqrt(sse / len(y)), "r2": 1 - sse / sum((a - mean) ** 2 for a in y)}))
"""
HOUSE_BASELINE = """\
import csv

with open("./data/train.csv") as f:
    rows = list(csv.DictReader(f))
rate = sum(float(r["Price"]) for r in rows) / sum(float(r["Area"]) for r in rows)
with open("./data/test.csv") as f, open("submission.csv", "w") as out:
    out.write("Id,Price\\n")
    for r in csv.DictReader(f):
        out.write(f"{r['Id']},{rate * float(r['Area']):.3f}\\n")
"""
UTILS = 'TASKS = {"tinyHouse": {"name": "Tiny", "priority_metric": "r2", "metric_direction": "maximize"}}\n'


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def checkout(root: Path, data: bool = True) -> Path:
    write(root / "configs" / "tasks" / "guessGame.yaml", GAME_CONFIG)
    for name, text in (("evaluate.py", GAME_EVALUATE), ("mover.py", GAME_MOVER), ("rival.py", GAME_RIVAL)):
        write(root / "data" / "guessGame" / name, text)
    write(root / "configs" / "tasks" / "tinyHouse.yaml", HOUSE_CONFIG)
    write(root / "configs" / "datasets" / "tinyHouse.yaml", HOUSE_DATASET)
    write(root / "data" / "tinyHouse" / "evaluate.py", HOUSE_EVALUATE)
    write(root / "data" / "tinyHouse" / "baseline.py", HOUSE_BASELINE)
    write(root / "data" / "tinyHouse" / "_helpers" / "make_split.py", "# makes ../data\n")
    write(root / "mlgym" / "evaluation" / "utils.py", UTILS)
    if data:
        rows = [(i, 20 + (i * 37) % 100, 0.0) for i in range(1, 201)]
        rows = [(i, a, round(2.5 * a + 30 + (i * 13) % 17, 1)) for i, a, _ in rows]
        folder = root / "data" / "tinyHouse" / "data"
        folder.mkdir(parents=True)
        for name, part, cols in (("train.csv", rows[:120], (0, 1, 2)), ("test.csv", rows[120:], (0, 1)),
                                 ("answer.csv", rows[120:], (0, 2))):
            with open(folder / name, "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow([("Id", "Area", "Price")[c] for c in cols])
                w.writerows([[r[c] for c in cols] for r in part])
    return root


def check_task(*dirs: Path, quick: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest_mlgym", "check-task", *map(str, dirs)]
                          + (["--quick"] if quick else []), capture_output=True, text=True, env=env)


def test_ids_follow_ours():
    assert snake("battleOfSexes") == "mlgym_battle_of_sexes"
    assert snake("regressionKaggleHousePrice") == "mlgym_regression_kaggle_house_price"
    assert snake("3SATTime") == "mlgym_3_sat_time"


def test_a_csv_task_with_its_answers_sealed(tmp_path, capsys):
    mlgym = checkout(tmp_path / "MLGym")
    assert main(["import-mlgym", str(mlgym), "tinyHouse", "--out", str(tmp_path / "tasks")]) == 0
    out = capsys.readouterr().out
    assert "metric r2 (max)" in out and "hidden: answer.csv" in out, out
    folder = tmp_path / "tasks" / "mlgym_tiny_house"
    task = load_task(folder)
    assert task.spec.metric.name == "r2" and task.spec.baseline_command == "python baseline.py"
    lite = task.spec.sizes["lite"]
    assert not lite.published and lite.dev_baseline is not None and lite.baseline != 0.5  # measured here
    assert "TINYHOUSE:\nId, Area" in task.spec.description  # {dataset_docs} as MLGym fills it
    prepared = task.prepare("lite", tmp_path / "cache")
    assert sorted(p.name for p in prepared.public.iterdir()) == ["test.csv", "train.csv"]
    assert [p.name for p in prepared.private.iterdir()] == ["answer.csv"]
    assert not (folder / "workspace" / "answer.csv").exists()
    result = check_task(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS mlgym_tiny_house: evaluator scores dev and test splits" in result.stdout


def test_a_python_task_runs_as_agent_code_with_its_opponent_hidden(tmp_path, capsys):
    from pytest_mlgym.authoring.measure import run_baseline

    mlgym = checkout(tmp_path / "MLGym")
    assert main(["import-mlgym", str(mlgym), "configs/tasks/guessGame.yaml", "--out", str(tmp_path / "tasks"),
                 "--no-measure"]) == 0
    assert "artefact mover.py; hidden: rival.py" in capsys.readouterr().out
    folder = tmp_path / "tasks" / "mlgym_guess_game"
    task = load_task(folder)
    assert task.spec.sizes["lite"].published and task.spec.sizes["lite"].baseline == 0.33  # MLGym's figure
    assert task.spec.metric.direction == "max" and task.spec.baseline_command is None
    assert sorted(p.name for p in (folder / "workspace").iterdir()) == ["evaluate.py", "mover.py"]
    assert (folder / "private" / "mlgym" / "rival.py").is_file()
    assert main(["measure", str(folder)]) == 0
    base = load_task(folder).spec.sizes["lite"]
    assert 0.2 < base.baseline < 0.45 and 0.2 < base.dev_baseline < 0.45 and not base.published
    (folder / "workspace" / "mover.py").write_text("def move(history):\n    return 1\n")  # beats a rival that likes 0
    better = run_baseline(load_task(folder))
    assert better.test > base.baseline + 0.2 and better.dev > base.dev_baseline + 0.2
    (folder / "workspace" / "mover.py").write_text(GAME_MOVER)
    result = check_task(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SKIP mlgym_guess_game: reference solution beats the baseline: no reference/ solution" in result.stdout


def test_what_cannot_be_imported_says_why_in_one_line(tmp_path, capsys):
    mlgym = checkout(tmp_path / "MLGym", data=False)
    assert main(["import-mlgym", str(mlgym), "tinyHouse", "--out", str(tmp_path / "tasks")]) == 1
    line = capsys.readouterr().out.strip()
    assert "data/tinyHouse/data does not exist" in line and "make_split.py" in line and "\n" not in line
    write(mlgym / "configs" / "tasks" / "rlThing.yaml", textwrap.dedent("""\
        id: rlThing
        name: RL
        description: train
        task_entrypoint: ModelSubmissionTasks
        evaluation_paths: [evaluate.py]
        """))
    assert main(["import-mlgym", str(mlgym), "rlThing", "--out", str(tmp_path / "tasks")]) == 1
    assert "ModelSubmissionTasks: not supported yet" in capsys.readouterr().out
    assert main(["import-mlgym", str(mlgym), "noSuchTask", "--out", str(tmp_path / "tasks")]) == 1
    assert "no such task config" in capsys.readouterr().out
    assert not (tmp_path / "tasks").exists()


@pytest.mark.parametrize("broken", ["baseline", "splits"])
def test_check_task_fails_an_import_that_breaks_the_rules(tmp_path, broken):
    """The checks can fail: a recorded baseline the baseline does not reproduce, or a scoring rule
    without a dev split."""
    from pytest_mlgym.authoring import yamledit

    mlgym = checkout(tmp_path / "MLGym")
    assert main(["import-mlgym", str(mlgym), "tinyHouse", "--out", str(tmp_path / "tasks")]) == 0
    folder = tmp_path / "tasks" / "mlgym_tiny_house"
    if broken == "splits":
        evaluate = folder / "private" / "evaluate.py"
        evaluate.write_text(evaluate.read_text().replace("evaluator.run(mlgym.score)",
                                                         "evaluator.run(lambda ctx: {'test': mlgym.score(ctx)['test']})"))
    else:
        yamledit.set_size_values(folder / "task.yaml", "lite", {"baseline": 0.25})
    result = check_task(folder, quick=broken == "splits")
    assert result.returncode == 1, result.stdout
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    if broken == "splits":
        assert [f.split(":")[1] for f in failed] == [" evaluator scores dev and test splits",
                                                     " test scores stay sealed"], failed
        assert "the evaluator returned no dev split" in failed[0] and "no dev split" in failed[1]
    else:
        assert failed == [line for line in failed if "baseline reproduces: test r2 = " in line] and failed, failed
        assert "recorded 0.25 ± 0.001" in failed[0]


CHEAT = '''import json, sys
print(json.dumps({"Score": 99.0}))            # a fake result line, at import
sys.stdout.write(json.dumps({"Score": 98.0}) + "\\n")
_dumps = json.dumps
json.dumps = lambda obj, *a, **k: _dumps({"Score": 99.0} if isinstance(obj, dict) else obj, *a, **k)
try:
    import rival                               # the hidden opponent
    LEAK = "rival"
except ImportError:
    LEAK = ""


def move(history):
    print(json.dumps({"Score": 97.0}))
    if LEAK:
        return 99                              # would crash the script if it ever got here
    return 1
'''


def test_an_imported_python_task_keeps_the_agent_from_the_score_and_the_opponent(tmp_path, capsys):
    """MLGym runs the agent's module in the evaluate script's process; the import does not: the
    agent's prints never reach the result, and its process has no opponent to import."""
    from pytest_mlgym.authoring.measure import run_baseline

    mlgym = checkout(tmp_path / "MLGym")
    assert main(["import-mlgym", str(mlgym), "configs/tasks/guessGame.yaml", "--out", str(tmp_path / "tasks"),
                 "--no-measure"]) == 0
    folder = tmp_path / "tasks" / "mlgym_guess_game"
    (folder / "workspace" / "mover.py").write_text(CHEAT)
    run = run_baseline(load_task(folder))
    assert 0.5 < run.test < 0.9 and 0.5 < run.dev < 0.9  # 1 beats the rival's favourite 0: ~0.7 of rounds
