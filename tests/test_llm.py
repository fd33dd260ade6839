"""The ``llm`` agent, driven end to end through litellm's real call path by the ``mlgym-scripted``
provider (a ``litellm.CustomLLM``): no hand-rolled client, no network. litellm is imported by the
tests that run, never at collection."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pytest_mlgym.agents import AgentError, AgentSpec, resolve
from scripted_play import SOLVE, play_scripted

ROOT = Path(__file__).resolve().parent.parent


def play(task, tmp_path, replies, script_extra=None, env_steps=20, **params):
    p = play_scripted(task, tmp_path, replies, script_extra=script_extra, env_steps=env_steps,
                      **{"num_retries": 3, **params})
    return p.record, p.steps, p.requests


@pytest.mark.parametrize("tools", [True, False], ids=["tool-calls", "text-format"])
def test_a_scripted_model_solves_a_task_through_litellm(tiny, tmp_path, tools):
    rec, steps, requests = play(tiny, tmp_path, SOLVE, tool_calling=tools)
    assert [s["action"] for s in steps] == ["open answer.txt", "edit 1:1\n7\nend_of_edit", "cat answer.txt",
                                            "validate", "submit"]
    assert steps[1]["observation"].startswith("Edited ") and steps[2]["observation"].strip() == "7"
    assert rec.status == "submitted" and rec.best_submission == 10.0 and rec.passed
    assert steps[0]["thought"] == "Let me read the current answer."  # without the command block
    sent_tools = requests[0]["tools"]
    if tools:
        assert {"open", "edit", "bash", "validate", "submit"} <= set(sent_tools)
    else:
        assert sent_tools == [] and "fenced block" in requests[0]["messages"][0]["content"]


def test_prompts_carry_the_task_the_tools_and_the_budget(tiny, tmp_path):
    _, _, requests = play(tiny, tmp_path, SOLVE, cost_limit=2.5, input_cost_per_token=1e-6)
    first = requests[0]["messages"]
    assert first[0]["role"] == "system" and "research agent" in first[0]["content"]
    assert "COMMANDS (one per step)" in first[0]["content"] and "edit <start>:<end>" in first[0]["content"]
    assert first[1]["content"].startswith("# Task: Guess the hidden number") and "COMMANDS" not in first[1]["content"]
    later = requests[2]["messages"][-1]
    assert later["role"] == "tool"  # the observation answers the tool call
    assert re.search(r"\(step 3/20; \$0\.\d\d of \$2\.50 spent; \d+ minutes left\)", later["content"])


def test_cost_tokens_and_latency_are_recorded_per_call(tiny, tmp_path):
    rec, _, requests = play(tiny, tmp_path, SOLVE, input_cost_per_token=1e-6, output_cost_per_token=1e-5)
    assert len(rec.usage) == len(requests) == 5
    for u in rec.usage:
        assert u["prompt_tokens"] > 100 and u["completion_tokens"] > 0 and u["latency_s"] >= 0
        assert u["cost_usd"] == pytest.approx(u["prompt_tokens"] * 1e-6 + u["completion_tokens"] * 1e-5)
    assert rec.cost_usd == pytest.approx(sum(u["cost_usd"] for u in rec.usage))
    assert rec.tokens == sum(u["prompt_tokens"] + u["completion_tokens"] for u in rec.usage)
    assert [u["step"] for u in rec.usage] == [1, 2, 3, 4, 5]


def test_the_cost_limit_ends_the_episode_with_an_autosubmission(tiny, tmp_path):
    # about 700 prompt tokens a call at $1e-4 a token: $0.07 a call; the limit is reached after the edit
    rec, steps, _ = play(tiny, tmp_path, SOLVE, cost_limit=0.12, input_cost_per_token=1e-4)
    assert rec.status == "cost_limit" and "cost limit of $0.12 reached" in rec.reason
    assert [s["action"] for s in steps] == ["open answer.txt", "edit 1:1\n7\nend_of_edit"]
    assert rec.scores[-1].kind == "autosubmit" and rec.best_submission == 10.0  # what was there is scored
    assert rec.cost_usd >= 0.12


def test_rate_limits_and_server_errors_are_retried_by_litellm(tiny, tmp_path):
    replies = [{"error": "rate_limit"}, {"error": "server_error"}, *SOLVE]
    rec, steps, requests = play(tiny, tmp_path, replies)
    assert rec.status == "submitted" and rec.best_submission == 10.0
    assert len(requests) == 7 and len(rec.usage) == 5  # two failed attempts, five answered calls
    assert rec.usage[0]["latency_s"] >= 1.0  # litellm's exponential backoff waited


def test_a_timed_out_call_is_retried(tiny, tmp_path):
    rec, _, requests = play(tiny, tmp_path, [{"error": "timeout"}, *SOLVE])
    assert rec.status == "submitted" and len(requests) == 6 and rec.best_submission == 10.0


def test_a_model_that_keeps_failing_ends_the_episode_in_one_line(tiny, tmp_path):
    replies = [SOLVE[0], *[{"error": "server_error"}] * 5]
    rec, steps, _ = play(tiny, tmp_path, replies, num_retries=1)
    # the provider's failure, not the agent's: its own status, with the error class
    assert rec.status == "infra_error" and rec.infra == "InternalServerError"
    assert rec.reason.startswith("InternalServerError: ") and "(model call failed after up to 1 retries)" in rec.reason
    assert "\n" not in rec.reason
    assert rec.best_submission == 6.0  # the untouched workspace was still scored


def test_a_garbage_reply_gets_one_corrective_reprompt(tiny, tmp_path):
    replies = [{"text": "I am not sure what to do"}, *SOLVE]
    rec, steps, requests = play(tiny, tmp_path, replies)
    assert rec.status == "submitted" and rec.best_submission == 10.0
    correction = requests[1]["messages"][-1]
    assert correction["role"] == "user" and correction["content"].startswith("Your reply could not be used: ")


def test_two_unparseable_replies_in_a_row_are_a_recorded_failure(tiny, tmp_path):
    replies = [{"text": "hmm"}, {"tool": "open", "args": {"nope": 1}}, *SOLVE]
    rec, steps, _ = play(tiny, tmp_path, replies)
    assert rec.status == "error" and rec.reason == "unparseable reply after a corrective re-prompt: open needs `path`"
    assert steps == [] or steps[-1]["action"] != "submit"


def test_a_reply_cut_off_by_the_token_limit_is_reprompted(tiny, tmp_path):
    replies = [{"text": "```\necho 7 > answ", "finish": "length"}, *SOLVE]
    rec, _, requests = play(tiny, tmp_path, replies, tool_calling=False)
    assert "cut off by the token limit" in requests[1]["messages"][-1]["content"]
    assert rec.status == "submitted"


def test_old_observations_are_compressed_to_a_placeholder(tiny, tmp_path):
    looks = [{"tool": "bash", "args": {"command": f"seq {n}"}} for n in range(1, 7)]
    _, _, requests = play(tiny, tmp_path, [*looks, {"tool": "submit"}], history=2)
    last = requests[-1]["messages"]
    observations = [m["content"] for m in last if m["role"] == "tool"]
    assert observations[:4] == [f"(output of step {n} omitted to save context: {n + 3} lines)" for n in range(1, 5)]
    assert "(step 7/20" in observations[-1] and "\n6\n" in observations[-1]
    assert "# Task:" in last[1]["content"]  # the first message is always kept


def test_a_context_overflow_drops_more_history_and_goes_on(tiny, tmp_path):
    looks = [{"tool": "bash", "args": {"command": "seq 300"}} for _ in range(4)]
    rec, _, requests = play(tiny, tmp_path, [*looks, *SOLVE], script_extra={"context_window": 2600}, history=10)
    assert rec.status == "submitted" and rec.best_submission == 10.0
    assert any("omitted to save context" in m["content"] for m in requests[-1]["messages"] if m["role"] == "tool")


def test_a_context_window_too_small_for_the_task_is_a_recorded_failure(tiny, tmp_path):
    rec, _, _ = play(tiny, tmp_path, SOLVE, script_extra={"context_window": 50})
    assert rec.status == "error" and rec.reason.startswith("context window exceeded")


def test_the_agent_submits_when_its_own_step_budget_is_spent(tiny, tmp_path):
    looks = [{"tool": "bash", "args": {"command": "true"}}] * 10
    rec, steps, requests = play(tiny, tmp_path, looks, env_steps=20, max_steps=3)
    assert [s["action"] for s in steps] == ["true", "true", "true", "submit"] and len(requests) == 3
    assert rec.status == "submitted"


def test_only_the_first_of_several_tool_calls_runs(tiny, tmp_path):
    script = [{"tools": [{"tool": "bash", "args": {"command": "echo 7 > answer.txt"}},
                         {"tool": "bash", "args": {"command": "echo 1 > answer.txt"}}]}, {"tool": "submit"}]
    rec, steps, requests = play(tiny, tmp_path, script)
    assert [s["action"] for s in steps] == ["echo 7 > answer.txt", "submit"] and rec.best_submission == 10.0
    answers = [m for m in requests[1]["messages"] if m["role"] == "tool"]
    assert len(answers) == 2 and answers[1]["content"].startswith("Not run: one tool call per turn")


def test_memory_notes_persist_across_episodes_of_a_task(tiny, tmp_path):
    kw = dict(memory=True, memory_dir=str(tmp_path / "memory"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    play(tiny, tmp_path / "a", [{"tool": "memory_write", "args": {"text": "7 scored 10"}}, {"tool": "submit"}], **kw)
    rec, steps, requests = play(tiny, tmp_path / "b", [{"tool": "memory_read"}, {"tool": "submit"}], **kw)
    assert {"memory_read", "memory_write"} <= set(requests[0]["tools"])
    assert "- 7 scored 10" in requests[1]["messages"][-1]["content"]
    assert [s["action"] for s in steps] == ["submit"]  # memory calls are not env steps


def test_agent_files_name_a_model_and_its_settings():
    for name, model in [("claude", "anthropic/"), ("gpt-4o", "openai/gpt-4o"), ("gemini", "gemini/"),
                        ("llama", "hosted_vllm/")]:
        spec = resolve(name, [ROOT / "agents"])
        assert spec.policy == "llm" and spec.params["model"].startswith(model)
        agent = spec.make()
        assert (agent.max_steps, agent.cost_limit, agent.temperature) == (50, 4.0, 0.0)
        assert agent.context_limit > 10_000 and agent.prompts["system"]
    assert resolve("llama", [ROOT / "agents"]).params["api_base"] == "http://127.0.0.1:8000/v1"
    spec = resolve("litellm:openai/gpt-4o-mini", [])
    assert (spec.policy, spec.params["model"]) == ("llm", "openai/gpt-4o-mini")


def test_env_variables_fill_agent_files(tmp_path, monkeypatch):
    (tmp_path / "local.yaml").write_text("policy: llm\nmodel: hosted_vllm/${M}\napi_base: ${B:-http://h:1/v1}\n")
    monkeypatch.setenv("M", "qwen")
    spec = resolve("local", [tmp_path])
    assert (spec.params["model"], spec.params["api_base"]) == ("hosted_vllm/qwen", "http://h:1/v1")


@pytest.mark.parametrize("model, env, message", [
    ("anthropic/claude-sonnet-4-6", {}, "ANTHROPIC_API_KEY is not set: the model anthropic/claude-sonnet-4-6 needs it"),
    ("anthropic/claude-imaginary-9", {"ANTHROPIC_API_KEY": "x"}, "model 'anthropic/claude-imaginary-9' does not exist"),
    ("nonsense-model", {}, "litellm does not know its provider"),
    ("mlgym-scripted/missing.yaml", {}, "missing.yaml: cannot read the script"),
])
def test_agents_that_cannot_run_fail_before_anything_runs(model, env, message, monkeypatch):
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(AgentError, match=re.escape(message)) as e:
        AgentSpec("x", "llm", {"model": model}).check()
    assert "\n" not in str(e.value)


def test_a_missing_api_key_stops_the_session_in_one_line_before_anything_runs(bench, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = bench.runpytest_subprocess("tasks", "--agent=claude", f"--mlgym-agents-dir={ROOT / 'agents'}",
                                        "-n", "2", "-p", "no:cacheprovider")
    assert result.ret == 4  # a usage error
    assert [line for line in result.errlines if line.strip()] == [
        "ERROR: --agent claude: ANTHROPIC_API_KEY is not set: the model anthropic/claude-sonnet-4-6 needs it "
        "(export it, or run another agent)"]
    assert not (bench.path / "reports" / "results.jsonl").exists()


def test_a_scripted_agent_file_runs_the_benchmark_and_records_its_costs(bench):
    agents = bench.path / "agents"
    agents.mkdir()
    (agents / "solve.yaml").write_text(yaml.safe_dump({"replies": SOLVE}))
    (agents / "scripted.yaml").write_text("policy: llm\nmodel: mlgym-scripted/solve.yaml\ntool_calling: true\n"
                                          "input_cost_per_token: 0.000001\n")
    result = bench.runpytest_subprocess("tasks", "--agent=scripted", "--agent=baseline", "-p", "no:cacheprovider",
                                        "--junitxml=reports/junit.xml")
    result.assert_outcomes(passed=2)
    import json
    runs = {r["agent"]: r for r in map(json.loads, (bench.path / "reports" / "results.jsonl").read_text().splitlines())}
    assert runs["scripted"]["best_submission"] == 10.0 and runs["scripted"]["cost_usd"] > 0
    assert len(runs["scripted"]["usage"]) == 5 and runs["baseline"]["usage"] == []
    assert 'name="cost_usd"' in (bench.path / "reports" / "junit.xml").read_text()
    # the trajectory is saved beside the results, thoughts included, and replays to the same score
    saved = bench.path / "reports" / runs["scripted"]["trajectory"]
    assert saved == bench.path / "reports" / "trajectories" / "tiny" / "scripted" / "0.jsonl"
    steps = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [s["action"] for s in steps][:2] == ["(reset)", "open answer.txt"]
    assert steps[1]["thought"] == "Let me read the current answer."
    replay = bench.runpytest_subprocess("tasks", f"--agent=replay:{saved}", "-p", "no:cacheprovider")
    replay.assert_outcomes(passed=1)
