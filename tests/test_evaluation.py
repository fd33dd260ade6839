"""Trusted evaluation: only the artefact leaves the sandbox; bad evaluator output is `invalid`."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import DATA
from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.evaluation import parse_metrics
from pytest_mlgym.sandbox import isolation
from pytest_mlgym.task import load_task


def task_with_evaluator(tmp_path, code: str, evaluation_s: float = 20):
    folder = tmp_path / "tasks" / "tiny"
    shutil.copytree(DATA / "tasks" / "tiny", folder)
    (folder / "private" / "evaluate.py").write_text(code)
    yml = folder / "task.yaml"
    yml.write_text(yml.read_text().replace("evaluation_s: 20", f"evaluation_s: {evaluation_s}"))
    return load_task(folder)


def validate(task, tmp_path, before: str = "true"):
    env = MLGymEnv(task, cache_dir=tmp_path / "cache", hidden=(task.path.parent,))
    try:
        env.reset(seed=0)
        env.step(before)
        obs, *_, info = env.step("validate")
        return obs, env.results()["scores"][-1]
    finally:
        env.close()


@pytest.mark.parametrize("code, reason", [
    ("raise SystemExit(3)", "evaluator failed (exit 3)"),
    ("import sys; sys.stderr.write('boom: bad input\\n'); sys.exit(1)", "evaluator failed (exit 1): boom: bad input"),
    ("print('the score is 7')", "printed no JSON object"),
    ("print('[1, 2]')", "printed no JSON object"),
    ("print('{\"other\": 1}')", "metric 'score' missing"),
    ("print('{\"score\": NaN}')", "not a finite number"),
    ("print('{\"score\": true}')", "not a finite number"),
    ("print('{\"invalid\": \"wrong format\"}')", "wrong format"),
    ("import time; time.sleep(30)", "evaluation timed out after 1 s"),
])
def test_bad_evaluator_outcomes_are_invalid_with_a_reason(tmp_path, code, reason):
    task = task_with_evaluator(tmp_path, code, evaluation_s=1 if "sleep" in code else 20)
    obs, event = validate(task, tmp_path)
    assert event.score is None and reason in event.reason, event


def test_the_last_json_line_counts(tmp_path):
    task = task_with_evaluator(tmp_path, "print('{\"score\": 1}')\nprint('log line')\nprint('{\"score\": 2.5, \"x\": 1}')")
    _, event = validate(task, tmp_path)
    assert (event.score, event.metrics) == (2.5, {"score": 2.5, "x": 1})


PROBE = """
import json, os, socket, sys
out = {"score": 1.0, "cwd": sorted(os.listdir('.')), "env": sorted(os.environ)}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2); out["net"] = "open"
except OSError as e:
    out["net"] = type(e).__name__
print(json.dumps(out))
"""


def test_the_evaluator_sees_only_the_artefact_no_secrets_no_network(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    task = task_with_evaluator(tmp_path, PROBE)
    _, event = validate(task, tmp_path, before="echo 1 > other.txt; mkdir sub")
    assert event.metrics["cwd"] == ["answer.txt"]
    assert not [k for k in event.metrics["env"] if "KEY" in k or "TOKEN" in k]
    if isolation.available() == "none":
        pytest.xfail("no network isolation on this host (install bubblewrap or run as root)")
    assert event.metrics["net"] != "open"


def test_parse_metrics_needs_a_dict_with_a_finite_metric():
    assert parse_metrics('{"acc": 0.5}\n', "acc").score == 0.5
    assert parse_metrics("", "acc").reason == "evaluator printed no JSON object of metrics"
    assert parse_metrics(json.dumps({"acc": "high"}), "acc").score is None


FOLDER_EVALUATOR = """
import json, sys
from pathlib import Path
files = sorted(str(p.relative_to(sys.argv[1])) for p in Path(sys.argv[1]).rglob('*') if p.is_file())
print(json.dumps({"score": float(len(files)), "files": files}))
"""


def test_a_folder_artefact_is_copied_out_whole_without_links(tmp_path):
    task = task_with_evaluator(tmp_path, FOLDER_EVALUATOR)
    yml = task.path / "task.yaml"
    yml.write_text(yml.read_text().replace("artefact: answer.txt", "artefact: ckpt/"))
    task = load_task(task.path)
    _, event = validate(task, tmp_path, before="mkdir -p ckpt/sub && echo 1 > ckpt/a && echo 2 > ckpt/sub/b")
    assert event.metrics["files"] == ["a", "sub/b"]
    _, event = validate(task, tmp_path, before=f"mkdir -p ckpt && echo 1 > ckpt/a && ln -s {task.evaluator} ckpt/leak")
    assert event.score is None and "no valid artefact ckpt/" in event.reason
