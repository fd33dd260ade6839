"""The sealed test split: the agent sees dev scores only; the records carry three test-score kinds.

The ``split`` fixture task has two hidden targets (dev 9, test 2; score = 10 - |guess - target|),
so every number tells which split it came from: guessing 9 scores dev 10 / test 3, guessing 3
scores dev 4 / test 9, guessing 6 scores dev 7 / test 6.
"""
from __future__ import annotations

import json

import pytest

from conftest import DATA
from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.episode import Episode
from pytest_mlgym.task import load_task

PLAN = ["echo 9 > answer.txt", "validate", "echo 3 > answer.txt", "validate", "echo 6 > answer.txt", "submit"]
TEST_ONLY = ("= 3 ", "= 9 ", "= 6 ", "'score': 3", "'score': 9", "'score': 6")  # how a test score would read


class Plan:
    def __init__(self):
        self.seen: list[str] = []

    def reset(self, task):
        self.plan = list(PLAN)
        self.baseline = task.baseline

    def act(self, observation):
        self.seen.append(observation)
        return self.plan.pop(0)


@pytest.fixture
def split():
    return load_task(DATA / "tasks" / "split")


def run(task, tmp_path, protocol="sealed"):
    agent = Plan()
    ep = Episode.start(MLGymEnv(task, cache_dir=tmp_path, protocol=protocol), seed=0)
    infos = []
    ep.on_step = lambda episode, action, info: infos.append(json.loads(json.dumps(info, default=str)))
    try:
        rec = ep.run(agent, name="plan")
        trajectory = list(ep.env.state.trajectory)
        final_obs = ep.observation
    finally:
        ep.close()
    return rec, agent.seen + [final_obs], infos, trajectory


def test_the_agent_sees_dev_scores_only_and_the_record_has_all_three_kinds(split, tmp_path):
    rec, seen, infos, trajectory = run(split, tmp_path)
    validations = [o for o in seen if o.startswith("Validation:")]
    assert [o.split(" (")[0] for o in validations] == ["Validation: score = 10", "Validation: score = 4"]
    assert "dev split" in validations[0] and "Submission: score = 7" in seen[-1] and "sealed" in seen[-1]
    for text in seen:
        assert not any(t in text for t in TEST_ONLY), text
    assert "Baseline score: 6 on the dev split" in seen[0] and "baseline scores 7" in seen[0]
    # the env's info, step by step: no test score until the episode is over
    for info in infos[:-1]:
        assert not {"best_attempt", "best_submission", "oracle_best_attempt", "scores"} & set(info), info
        assert all(f["score"] in (None, 10.0, 4.0) for f in info["feedback"])
    assert infos[-1]["status"] == "submitted" and infos[-1]["best_submission"] == 6.0
    # the saved trajectory is the agent's view too
    scored = [s for entry in trajectory for s in entry.get("scored", [])]
    assert [(s["split"], s["score"]) for s in scored] == [("dev", 10.0), ("dev", 4.0), ("dev", 7.0)]
    # the three kinds, all on the test split
    assert (rec.best_submission, rec.best_attempt, rec.oracle_best_attempt) == (6.0, 3.0, 9.0)
    assert [(s.dev_score, s.score) for s in rec.scores] == [(10.0, 3.0), (4.0, 9.0), (7.0, 6.0)]
    assert rec.protocol == "sealed" and rec.passed is False and "does not beat" in rec.verdict  # 6 < 7 on test


def test_the_reward_is_the_dev_gain_against_the_dev_baseline(split, tmp_path):
    env = MLGymEnv(split, cache_dir=tmp_path)
    try:
        env.reset(seed=0)
        env.step("echo 9 > answer.txt")
        reward = env.step("validate")[1]
        assert reward == pytest.approx(1.0)  # dev 10 = the dev reference, against dev baseline 6; test 3 is worse
        env.step("echo 3 > answer.txt")
        assert env.step("validate")[1] == 0.0  # dev 4 is no gain, although test 9 would be
    finally:
        env.close()


def test_mlgym_protocol_shows_test_scores_and_selects_on_them(split, tmp_path):
    rec, seen, infos, _ = run(split, tmp_path, protocol="mlgym")
    validations = [o.split(" (")[0] for o in seen if o.startswith("Validation:")]
    assert validations == ["Validation: score = 3", "Validation: score = 9"]
    assert "Baseline score: 7" in seen[0] and "as in MLGym" in seen[0]
    assert infos[1]["oracle_best_attempt"] == 3.0  # nothing is sealed: info carries test scores as they come
    assert (rec.best_submission, rec.best_attempt, rec.oracle_best_attempt) == (6.0, 9.0, 9.0)
    assert rec.protocol == "mlgym"


def test_a_task_without_a_dev_split_shows_no_score(tmp_path):
    """A legacy evaluator (one flat dict of test metrics) has no dev split: validate says so and
    shows no number, and the harness still records the test score."""
    import shutil

    folder = tmp_path / "tiny"
    shutil.copytree(DATA / "tasks" / "tiny", folder)
    (folder / "private" / "evaluate.py").write_text("import json\nprint(json.dumps({'score': 8.25}))\n")
    env = MLGymEnv(load_task(folder), cache_dir=tmp_path / "cache")
    try:
        env.reset(seed=0)
        obs, reward, *_, info = env.step("validate")
        assert "no dev split" in obs and "8.25" not in obs and reward == 0.0
        assert info["feedback"][-1]["score"] is None
        assert env.results()["scores"][-1].score == 8.25  # recorded for the harness all the same
    finally:
        env.close()


def test_the_protocol_option_is_checked(bench):
    bench.makeini("[pytest]\naddopts = -p no:anyio -p no:benchmark -p no:cacheprovider\n")
    result = bench.runpytest("--agent=baseline", "--mlgym-protocol=oracle")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--mlgym-protocol: unknown protocol 'oracle'; choose sealed or mlgym*"])


def test_the_sealed_check_finds_a_leak_and_passes_a_sealed_task(split, tmp_path, monkeypatch):
    import shutil

    from pytest_mlgym import env as env_module
    from pytest_mlgym.testing import sealed

    folder = tmp_path / "split"
    shutil.copytree(split.path, folder)
    (folder / "workspace" / "answer.txt").write_text("5.123\n")  # dev 6.123, test 6.877: numbers that tell
    split = load_task(folder)
    assert sealed.check(split, cache_dir=tmp_path) == []
    monkeypatch.setattr(env_module.MLGymEnv, "_feedback", lambda self, ev: (ev.score, ev.metrics, "dev"))
    problems = sealed.check(split, cache_dir=tmp_path)
    assert problems and all("test-split number" in p for p in problems), problems


# Every shipped task is checked too: tests/test_shipped_tasks.py (TaskChecks.test_test_scores_stay_sealed).
