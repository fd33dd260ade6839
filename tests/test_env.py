"""MLGymEnv: the Gymnasium API, rewards from trusted validation, limits and autosubmission."""
from __future__ import annotations

import re
import shutil

import gymnasium
import pytest

from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.episode import Episode
from pytest_mlgym.task import load_task


@pytest.fixture
def env(tiny, tmp_path):
    env = MLGymEnv(tiny, max_steps=6, cache_dir=tmp_path)
    yield env
    env.close()


def test_every_task_is_registered_with_gymnasium():
    env = gymnasium.make("mlgym/prisoners_dilemma", max_steps=3)
    try:
        obs, info = env.reset(seed=0)
        assert "row_strategy" in obs and "COMMANDS" in obs and info["task"] == "prisoners_dilemma"
        assert env.observation_space.contains(obs)
        obs, reward, terminated, truncated, info = env.step("validate")
        assert reward == pytest.approx(0.0, abs=0.01) and not terminated and not truncated  # the baseline: 0
        # the shipped generous tit-for-tat scores its measured dev baseline, what validate shows
        assert info["best_feedback"] == pytest.approx(env.unwrapped.size_spec.dev_baseline, abs=1e-9)
    finally:
        env.close()


def test_reset_gives_task_text_and_generated_tool_docs(env):
    obs, info = env.reset(seed=3)
    for word in ("Guess the hidden number", "Baseline score: 6", "open <path>", "edit <start>:<end>",
                 "search_dir", "find_file", "validate", "submit", "answer.txt"):
        assert word in obs
    assert info["status"] == "running" and info["step"] == 0


def test_reward_is_the_gain_in_best_normalised_score(env):
    env.reset(seed=0)
    # tiny: dev baseline 6 (the normalised 0), dev reference 10 (its 1): a baseline-level validate gains 0
    steps = [("validate", 0.0), ("echo 8 > answer.txt", 0.0), ("validate", (9 - 6) / (10 - 6)),
             ("echo 5 > answer.txt", 0.0), ("validate", 0.0), ("echo 7 > answer.txt", 0.0), ]
    total = 0.0
    for action, expected in steps[:5]:
        obs, reward, terminated, truncated, info = env.step(action)
        assert reward == pytest.approx(expected), (action, obs)
        total += reward
    assert total == pytest.approx(0.75)  # the return is the best normalised score, (9 - 6) / (10 - 6)
    res = env.results()  # the harness's view; the agent's info holds no test score mid-episode
    assert res["best_attempt"] == 9 and res["best_submission"] is None
    assert "best_attempt" not in info and info["best_feedback"] == 9


def test_submit_terminates_and_the_last_scored_artefact_is_the_submission(env):
    env.reset(seed=0)
    env.step("echo 10 > answer.txt")
    env.step("validate")  # 7
    env.step("echo 8 > answer.txt")
    obs, reward, terminated, truncated, info = env.step("submit")
    assert terminated and not truncated and info["status"] == "submitted"
    assert (info["best_attempt"], info["best_submission"]) == (9.0, 9.0) or (info["best_attempt"], info["best_submission"]) == (9.0, 9.0)
    assert "Submission: score = 9" in obs
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step("ls")


def test_step_limit_truncates_and_autosubmits(env):
    env.reset(seed=0)
    for _ in range(5):
        *_, truncated, info = env.step("true")
        assert not truncated
    obs, reward, terminated, truncated, info = env.step("echo 7 > answer.txt")
    assert truncated and not terminated and info["status"] == "step_limit"
    assert info["best_submission"] == 10.0 and "Autosubmission: score = 10" in obs
    assert info["scores"][-1].kind == "autosubmit"


def test_time_limit_ends_the_episode(tiny, tmp_path):
    spec = tiny.spec.model_copy(update={"limits": tiny.spec.limits.model_copy(update={"episode_s": 0.5})})
    env = MLGymEnv(type(tiny)(spec, tiny.path), cache_dir=tmp_path)
    try:
        env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step("sleep 0.7")
        assert truncated and info["status"] == "time_limit" and "time limit" in info["reason"]
    finally:
        env.close()


def test_invalid_submission_is_recorded_with_its_reason(env):
    env.reset(seed=0)
    env.step("echo not-a-number > answer.txt")
    obs, reward, terminated, truncated, info = env.step("submit")
    assert terminated and info["status"] == "invalid" and "one finite number" in info["reason"]
    assert info["best_submission"] is None and reward == 0.0


def test_missing_artefact_is_invalid_not_a_crash(env):
    env.reset(seed=0)
    env.step("rm answer.txt")
    obs, *_ , info = env.step("validate")
    assert "invalid" in obs and "no valid artefact answer.txt" in env.results()["scores"][-1].reason


def test_interactive_programs_are_refused(env):
    env.reset(seed=0)
    for action in ("vim answer.txt", "python", "git status", "nano x"):
        obs, *_ = env.step(action)
        assert obs.startswith("Refused:"), action


def test_the_evaluator_is_the_task_copy_not_the_workspace(env, tiny):
    """Writing a fake evaluator or metrics file into the workspace changes nothing."""
    env.reset(seed=0)
    env.step("mkdir -p private && printf 'print(\\'{\"score\": 100}\\')' > private/evaluate.py")
    env.step("echo '{\"score\": 100}' > metrics.json")
    env.step("validate")
    assert env.results()["best_attempt"] == 6.0


def test_private_folder_is_never_copied_and_invisible(env, tiny):
    env.reset(seed=0)
    obs, *_ = env.step("ls -A")
    assert obs.split() == ["answer.txt"]
    obs, *_ = env.step(f"cat {tiny.private_dir / 'target.txt'}")
    assert "No such file" in obs


def test_episode_run_records_what_the_agent_did(tiny, tmp_path):
    class Greedy:
        def reset(self, task):
            self.plan = ["echo 9 > answer.txt", "validate", "echo 7 > answer.txt", "submit"]

        def act(self, observation):
            return self.plan.pop(0)

    ep = Episode.start(MLGymEnv(tiny, cache_dir=tmp_path), seed=1)
    try:
        rec = ep.run(Greedy(), name="greedy")
    finally:
        ep.close()
    assert rec.passed and rec.status == "submitted" and rec.steps == 4
    assert [(s.kind, s.score) for s in rec.scores] == [("validate", 8.0), ("submit", 10.0)]
    assert rec.best_attempt == 10.0 and "greedy beats the baseline" in rec.verdict


def test_a_task_may_ask_for_network_and_gets_none_otherwise(tiny, tmp_path):
    from pytest_mlgym.sandbox import isolation
    if isolation.available() == "none":
        pytest.skip("no isolation here: the network is always on")
    task_dir = tmp_path / "tiny"
    shutil.copytree(tiny.path, task_dir)
    yml = task_dir / "task.yaml"
    for network, expect in (("false", "unreachable"), ("true", "reachable")):
        yml.write_text(re.sub(r"limits: \{", f"limits: {{network: {network}, ", tiny.path.joinpath("task.yaml").read_text()))
        env = MLGymEnv(load_task(task_dir), cache_dir=tmp_path / "cache")
        env.reset(seed=0)
        try:
            obs = env.step("python -c \"import socket; print(len(socket.if_nameindex()) > 1 and 'reachable' or "
                           "'unreachable')\"")[0]
        finally:
            env.close()
        assert obs.strip() == expect, (network, obs)
