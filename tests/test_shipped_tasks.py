"""Every shipped task: its evaluator tells better from worse and rejects bad artefacts cleanly.

These drive real episodes (the same env the benchmark uses) with the task's reference solution,
kept outside the workspace, and with malformed artefacts.
"""
from __future__ import annotations

import pytest

from conftest import ROOT
from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.episode import Episode
from pytest_mlgym.task import discover

TASKS, _ = discover([ROOT / "tasks"])


@pytest.fixture(params=TASKS, ids=[t.id for t in TASKS])
def episode(request):
    ep = Episode.start(MLGymEnv(request.param, hidden=(ROOT / "tasks",)), seed=0)
    yield ep
    ep.close()


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


@pytest.mark.parametrize("content", [b"", b"\x00\xff\xfe garbage \x00" * 100, b"x = (\n", "Id,Sale_Price\n1,nan\n".encode()])
def test_malformed_artefacts_are_invalid_with_a_reason(episode, content):
    episode.sandbox.write_file(episode.task.spec.artefact, content)
    obs, *_, info = episode.step("validate")
    event = info["scores"][-1]
    assert event.score is None and event.reason and "\n" not in event.reason, obs
    assert obs.startswith("Validation: the artefact is invalid")


def test_missing_artefact_is_invalid(episode):
    episode.step(f"rm -f {episode.task.spec.artefact}")
    obs, *_, info = episode.step("submit")
    assert info["status"] == "invalid" and info["best_submission"] is None
    assert "no valid artefact" in info["reason"]


def test_artefact_symlink_to_hidden_answers_is_refused(episode):
    target = next((episode.task.private_dir).rglob("*"))
    episode.step(f"rm -f {episode.task.spec.artefact}; ln -s {target} {episode.task.spec.artefact}")
    *_, info = episode.step("validate")
    assert info["scores"][-1].score is None and "no valid artefact" in info["scores"][-1].reason
