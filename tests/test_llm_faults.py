"""The ``llm`` agent's model call under the faults a lab meets first, each played through litellm's
real call path by the ``mlgym-scripted`` provider (a ``litellm.CustomLLM``): a 429 carrying
``Retry-After``, a provider that hangs, replies cut at ``max_tokens``, several command blocks, a
huge reply. litellm is imported by the tests that run, never at collection."""
from __future__ import annotations

import time

import pytest
import yaml

from pytest_mlgym.agents import AgentSpec
from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.episode import Episode

SOLVE = [  # open, edit, run, validate, submit: the tiny task's target is 7
    {"tool": "open", "args": {"path": "answer.txt"}},
    {"tool": "edit", "args": {"start": 1, "end": 1, "text": "7\n"}},
    {"tool": "bash", "args": {"command": "cat answer.txt"}},
    {"tool": "validate"},
    {"tool": "submit"},
]


def play(task, tmp_path, replies, episode_s: float | None = None, **params):
    """One episode of the scripted model on ``task``: its record, steps and requests, and its wall time."""
    from pytest_mlgym.agents import scripted  # imports litellm: never at collection
    if episode_s is not None:
        limits = task.spec.limits.model_copy(update={"episode_s": episode_s})
        task = type(task)(task.spec.model_copy(update={"limits": limits}), task.path)
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"replies": replies}))
    agent = AgentSpec("scripted", "llm", {"model": f"mlgym-scripted/{script}", "tool_calling": True,
                                          "num_retries": 3, "name": "scripted", **params}).make()
    env = MLGymEnv(task, cache_dir=tmp_path / "cache", max_steps=20)
    ep = Episode.start(env, seed=0)
    t0 = time.monotonic()
    try:
        rec = ep.run(agent, name="scripted")
    finally:
        ep.close()
    return rec, env.state.trajectory[1:], scripted.HANDLER.requests[agent.episode], time.monotonic() - t0


# -- retries honour Retry-After ----------------------------------------------------------------------
def test_a_429_is_retried_after_the_wait_its_retry_after_header_asks_for(tiny, tmp_path):
    rec, _, requests, _ = play(tiny, tmp_path, [{"error": "rate_limit", "retry_after": 2}, *SOLVE])
    assert rec.status == "submitted" and rec.best_submission == 10.0 and len(requests) == 6
    assert requests[1]["t"] - requests[0]["t"] >= 2.0  # litellm's backoff alone would have waited 0.5-1.25 s
    assert rec.usage[0]["latency_s"] >= 2.0


def test_a_retry_after_longer_than_the_episodes_time_left_ends_it_at_once(tiny, tmp_path):
    rec, _, requests, wall = play(tiny, tmp_path, [{"error": "rate_limit", "retry_after": 600}, *SOLVE])
    assert rec.status == "infra_error" and rec.infra == "RateLimitError" and len(requests) == 1
    assert rec.reason.startswith("RateLimitError: ") and "asks to retry after 600 s" in rec.reason
    assert "left in the episode" in rec.reason and "\n" not in rec.reason
    assert wall < 60 and rec.best_submission == 6.0  # not retried; what the workspace held was scored


# -- a call's timeout: timeout_s and the episode's time left, for any provider -------------------------
def test_a_provider_that_hangs_is_abandoned_when_the_episodes_time_is_up(tiny, tmp_path):
    rec, _, requests, wall = play(tiny, tmp_path, [SOLVE[0], {"hang": 60}, *SOLVE[1:]], episode_s=6)
    assert rec.status == "infra_error" and rec.infra == "Timeout" and len(requests) == 2
    assert rec.reason.startswith("Timeout: ") and "the episode's time left" in rec.reason
    assert wall < 6 + 15  # abandoned at the cap (plus scoring), not after the provider's 60 s
    assert rec.best_submission == 6.0


def test_a_call_past_timeout_s_is_abandoned_and_retried(tiny, tmp_path):
    rec, steps, requests, _ = play(tiny, tmp_path, [{"hang": 60}, *SOLVE], timeout_s=1.5)
    assert rec.status == "submitted" and rec.best_submission == 10.0 and len(requests) == 6
    assert 1.5 <= requests[1]["t"] - requests[0]["t"] < 15  # the cap, then litellm's backoff: not 60 s
    assert [s["action"] for s in steps][-1] == "submit"


@pytest.mark.parametrize("error, retried", [("auth", False), ("not_found", False), ("server_error", True)])
def test_only_failures_a_retry_can_cure_are_retried(tiny, tmp_path, error, retried):
    rec, _, requests, _ = play(tiny, tmp_path, [{"error": error}] * 3, num_retries=2)
    assert rec.status == "infra_error" and len(requests) == (3 if retried else 1)
