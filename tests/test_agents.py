"""The agent registry and the built-in policies."""
from __future__ import annotations

import json

import pytest

from pytest_mlgym.agents import AgentError, TaskInfo, choices, resolve
from pytest_mlgym.agents.builtin import BaselineAgent, ReplayAgent
from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.episode import Episode


def info(**kw):
    base = dict(id="tiny", name="t", description="d", metric="score", direction="max", baseline=6.0,
                artefact="answer.txt", baseline_command=None, max_steps=5, seed=0)
    return TaskInfo(**{**base, **kw})


def test_builtins_and_yaml_agents_resolve(tmp_path):
    (tmp_path / "mine.yaml").write_text("policy: replay\ntrajectory: t.jsonl\ndescription: a recorded run\n")
    (tmp_path / "t.jsonl").write_text("")
    assert resolve("baseline", [tmp_path]).policy == "baseline"
    spec = resolve("mine", [tmp_path])
    assert (spec.policy, spec.params["trajectory"]) == ("replay", str(tmp_path / "t.jsonl"))
    assert choices([tmp_path]) == ["baseline", "mine", "replay", "search"]
    assert resolve(f"replay:{tmp_path / 't.jsonl'}", []).params == {"trajectory": str(tmp_path / "t.jsonl")}


@pytest.mark.parametrize("name, yaml_text, message", [
    ("nope", None, "unknown agent 'nope'; valid agents: baseline, replay, search"),
    ("bad", "policy: telepathy\n", "policy: unknown policy 'telepathy'"),
    ("bad", "temperature: 0\n", "policy: a policy name is required"),
    ("bad", "policy: [unclosed\n", "cannot read"),
    ("baseline:x", None, "takes no argument"),
])
def test_bad_agents_are_one_line_errors(tmp_path, name, yaml_text, message):
    if yaml_text is not None:
        (tmp_path / f"{name}.yaml").write_text(yaml_text)
    with pytest.raises(AgentError, match=message) as e:
        resolve(name, [tmp_path])
    assert "\n" not in str(e.value)


def test_bad_policy_parameters_fail_when_the_agent_is_made(tmp_path):
    (tmp_path / "odd.yaml").write_text("policy: baseline\nwings: 2\n")
    with pytest.raises(AgentError, match="bad parameters for policy 'baseline'"):
        resolve("odd", [tmp_path]).make()


def test_baseline_agent_runs_the_baseline_command_then_submits():
    agent = BaselineAgent()
    agent.reset(info(baseline_command="python baseline.py"))
    assert [agent.act("") for _ in range(3)] == ["python baseline.py", "submit", "submit"]
    agent.reset(info())
    assert agent.act("") == "submit"


def test_replay_plays_a_recorded_trajectory_file_or_folder(tmp_path):
    steps = [{"action": "(reset)", "observation": "..."}, {"action": "echo 7 > answer.txt", "observation": ""}]
    (tmp_path / "tiny.jsonl").write_text("\n".join(json.dumps(s) for s in steps) + "\n\n")
    for source in (tmp_path / "tiny.jsonl", tmp_path):
        agent = ReplayAgent(str(source))
        agent.reset(info())
        assert [agent.act(""), agent.act("")] == ["echo 7 > answer.txt", "submit"]
    with pytest.raises(AgentError, match="no trajectory for task other"):
        ReplayAgent(str(tmp_path)).reset(info(id="other"))
    (tmp_path / "tiny.jsonl").write_text("not json\n")
    with pytest.raises(AgentError, match="tiny.jsonl:1: not a JSON object"):
        ReplayAgent(str(tmp_path)).reset(info())


def test_a_recorded_episode_replays_to_the_same_score(tiny, tmp_path):
    env = MLGymEnv(tiny, cache_dir=tmp_path)
    ep = Episode.start(env, seed=0)
    for action in ("echo 8 > answer.txt", "validate", "submit"):
        ep.step(action)
    first = ep.record("manual", "manual", 0.0)
    (tmp_path / "run.jsonl").write_text("\n".join(json.dumps(s) for s in env.state.trajectory))
    ep.close()
    replayed = Episode.start(MLGymEnv(tiny, cache_dir=tmp_path), seed=0)
    try:
        second = replayed.run(resolve(f"replay:{tmp_path / 'run.jsonl'}", []))
    finally:
        replayed.close()
    assert [s.score for s in second.scores] == [s.score for s in first.scores] == [9.0, 9.0]
