"""Every shipped task: its evaluator tells better from worse and rejects bad artefacts cleanly.

These drive real episodes (the same env the benchmark uses) with the task's sample artefact,
its reference solution (kept outside the workspace: copied in, then `reference_command`, or a
precomputed artefact), and malformed artefacts. Nothing here trains a baseline; the benchmark
(`pytest tasks --agent=baseline`) does that.
"""
from __future__ import annotations

import shlex

import pytest

from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.episode import Episode
from pytest_mlgym.task import DataMissing, discover, load_task

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS, _ = discover([ROOT / "tasks"])


@pytest.fixture(params=TASKS, ids=[t.id for t in TASKS])
def episode(request):
    try:
        ep = Episode.start(MLGymEnv(request.param, hidden=(ROOT / "tasks",)), seed=0)
    except DataMissing as e:
        pytest.skip(str(e))
    yield ep
    ep.close()


def artefact(ep) -> str:
    return ep.task.spec.artefact.rstrip("/")


def test_sample_artefact_is_valid(episode):
    spec = episode.task.spec
    if spec.sample_artefact:
        episode.step(f"rm -rf {shlex.quote(artefact(episode))} && cp -r {shlex.quote(spec.sample_artefact)} "
                     f"{shlex.quote(artefact(episode))}")
    elif spec.baseline_command:
        pytest.fail(f"{spec.id}: the workspace holds no artefact until the baseline runs: declare sample_artefact")
    obs, *_, info = episode.step("validate")
    event = episode.env.results()["scores"][-1]  # the harness's view: the agent's info has no test score
    assert event.score is not None and event.dev_score is not None, obs


def test_reference_solution_beats_the_baseline(episode):
    task = episode.task
    assert (task.path / "reference").is_dir(), f"{task.id} ships no reference solution"
    episode.sandbox.copy_in(task.path / "reference", ".")
    if task.spec.reference_command:
        episode.step(task.spec.reference_command)
    obs, *_, info = episode.step("submit")
    assert info["status"] == "submitted", obs
    base = episode.env.size_spec.baseline
    assert task.spec.metric.better(info["best_submission"], base), f"reference {info['best_submission']} vs {base}"


JUNK = [b"", b"\x00\xff\xfe garbage \x00" * 100, b"x = (\n", "id,label\n1,nan\n".encode()]


@pytest.mark.parametrize("content", JUNK, ids=["empty", "binary", "python-syntax", "csv-nan"])
def test_malformed_artefacts_are_invalid_with_a_reason(episode, content):
    path = artefact(episode)
    if episode.task.spec.artefact.endswith("/"):  # a folder artefact: one junk file in place of its content
        episode.step(f"rm -rf {shlex.quote(path)} && mkdir {shlex.quote(path)}")
        path += "/junk.bin"
    episode.sandbox.write_file(path, content)
    obs, *_, info = episode.step("validate")
    event = episode.env.results()["scores"][-1]
    assert event.score is None and event.reason and "\n" not in event.reason, obs
    assert obs.startswith("Validation: the artefact is invalid")


def test_missing_artefact_is_invalid(episode):
    episode.step(f"rm -rf {shlex.quote(artefact(episode))}")
    obs, *_, info = episode.step("submit")
    assert info["status"] == "invalid" and info["best_submission"] is None
    assert "no valid artefact" in info["reason"]


def test_artefact_symlink_to_hidden_files_is_refused(episode):
    target = next(p for p in episode.task.private_dir.rglob("*") if p.is_file())
    episode.step(f"rm -rf {shlex.quote(artefact(episode))}; ln -s {target} {shlex.quote(artefact(episode))}")
    episode.step("validate")
    event = episode.env.results()["scores"][-1]
    assert event.score is None and "no valid artefact" in event.reason


def test_knobs_name_real_assignments():
    for task in TASKS:  # load_task checks each knob; this keeps the check from being skipped
        assert load_task(task.path).spec.knobs == task.spec.knobs
