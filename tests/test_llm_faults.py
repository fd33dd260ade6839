"""The ``llm`` agent's model call under the faults a lab meets first, each played through litellm's
real call path by the ``mlgym-scripted`` provider (a ``litellm.CustomLLM``): a 429 carrying
``Retry-After``, a provider that hangs, replies cut at ``max_tokens``, several command blocks, a
huge reply. litellm is imported by the tests that run, never at collection."""
from __future__ import annotations

import json
import time

import pytest

from scripted_play import SOLVE, play_scripted

def play(task, tmp_path, replies, episode_s: float | None = None, **params):
    """One episode of the scripted model on ``task``: its record, steps and requests, and its wall time."""
    p = play_scripted(task, tmp_path, replies, episode_s=episode_s, **{"num_retries": 3, **params})
    return p.record, p.steps, p.requests, p.wall_s


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
    # a call still running when the episode's time runs out is the episode's time limit, never an
    # infra_error: a model must not buy a re-run (--mlgym-resume) by answering slowly at the end
    rec, _, requests, wall = play(tiny, tmp_path, [SOLVE[0], {"hang": 60}, *SOLVE[1:]], episode_s=6)
    assert rec.status == "time_limit" and rec.infra is None and len(requests) == 2
    assert rec.reason.startswith("the episode's time ran out during a model call (Timeout: ")
    assert "the episode's time left" in rec.reason
    assert wall < 6 + 15  # abandoned at the cap (plus scoring), not after the provider's 60 s
    assert rec.best_submission == 6.0


@pytest.mark.parametrize("error", ["bad_request", "content_policy"])
def test_a_request_the_provider_refuses_for_its_content_is_not_an_infra_error(tiny, tmp_path, error):
    # attack: a model that provokes a 400 (what it wrote into its history) when it does badly would
    # otherwise have its run left out of AUP and re-run by --mlgym-resume: a free re-roll
    rec, _, requests, _ = play(tiny, tmp_path, [SOLVE[0], {"error": error}, *SOLVE[1:]], num_retries=2)
    assert rec.status == "error" and rec.infra is None and len(requests) == 2  # not retried either
    assert "BadRequestError" in rec.reason or "ContentPolicyViolationError" in rec.reason
    assert rec.best_submission == 6.0  # the workspace was still scored


def test_a_call_past_timeout_s_is_abandoned_and_retried(tiny, tmp_path):
    rec, steps, requests, _ = play(tiny, tmp_path, [{"hang": 60}, *SOLVE], timeout_s=1.5)
    assert rec.status == "submitted" and rec.best_submission == 10.0 and len(requests) == 6
    assert 1.5 <= requests[1]["t"] - requests[0]["t"] < 15  # the cap, then litellm's backoff: not 60 s
    assert [s["action"] for s in steps][-1] == "submit"


@pytest.mark.parametrize("error, retried", [("auth", False), ("not_found", False), ("server_error", True)])
def test_only_failures_a_retry_can_cure_are_retried(tiny, tmp_path, error, retried):
    rec, _, requests, _ = play(tiny, tmp_path, [{"error": error}] * 3, num_retries=2)
    assert rec.status == "infra_error" and len(requests) == (3 if retried else 1)
    assert rec.reason.endswith("(model call failed after up to 2 retries)" if retried else "is not retried)")


def test_a_call_when_the_episodes_time_is_up_ends_it_as_a_time_limit_not_a_provider_failure():
    from pytest_mlgym.agents import EpisodeEnd, calls
    with pytest.raises(EpisodeEnd) as end:
        calls.complete({"model": "mlgym-scripted/none.yaml", "messages": []}, num_retries=2, timeout_s=60,
                       deadline=time.monotonic() - 1)
    assert end.value.status == "time_limit"


# -- replies cut at max_tokens ------------------------------------------------------------------------
LONG_FILE = "".join(f"x{n} = {n}\n" for n in range(400))
CUT = {"tool-calls": {"tool": "create", "args": {"path": "big.py", "text": LONG_FILE}, "finish": "length"},
       "text-format": {"text": f"I will write it at once.\n```\ncreate big.py\n{LONG_FILE}", "finish": "length"}}


@pytest.mark.parametrize("mode", list(CUT))
def test_a_reply_cut_at_max_tokens_is_told_as_a_cut_reply_with_how_to_split_the_work(tiny, tmp_path, mode):
    rec, steps, requests, _ = play(tiny, tmp_path, [CUT[mode], *SOLVE], tool_calling=mode == "tool-calls",
                                   max_tokens=1000)
    told = requests[1]["messages"][-1]
    assert told["role"] == ("tool" if mode == "tool-calls" else "user")
    assert "cut off by the token limit (1000 tokens a reply)" in told["content"]  # the limit, not bad JSON
    assert "`create`" in told["content"] and "`edit`" in told["content"] and "JSON" not in told["content"]
    for m in requests[1]["messages"]:  # the cut call stays in the history with arguments a provider can read
        for call in m.get("tool_calls") or []:
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
    assert steps[0]["action"] == "open answer.txt"  # nothing of the cut reply ran
    assert rec.status == "submitted" and rec.best_submission == 10.0


def test_cut_replies_have_their_own_larger_allowance_and_the_reason_says_when_it_ran_out(tiny, tmp_path):
    rec, _, _, _ = play(tiny, tmp_path, [CUT["tool-calls"]] * 3 + SOLVE)
    assert rec.status == "submitted" and rec.best_submission == 10.0  # two unparseable replies would end it
    (tmp_path / "again").mkdir()
    rec, _, requests, _ = play(tiny, tmp_path / "again", [CUT["tool-calls"]] * 4 + SOLVE)
    assert rec.status == "error" and len(requests) == 4
    assert rec.reason == ("4 replies in a row were cut off by the token limit (max_tokens 4096) before their "
                          "command was complete")


# -- text mode: one command block a reply --------------------------------------------------------------
def test_a_text_reply_with_two_command_blocks_runs_nothing_and_is_told_the_count(tiny, tmp_path):
    two = {"text": "DISCUSSION\nA 1, then a 7.\n```\necho 1 > answer.txt\n```\nand\n```\necho 7 > answer.txt\n```"}
    rec, steps, requests, _ = play(tiny, tmp_path, [two, *SOLVE], tool_calling=False)
    told = requests[1]["messages"][-1]["content"]
    assert told.startswith("Your reply could not be used: it has 2 command blocks")
    assert [s["action"] for s in steps][:1] == ["open answer.txt"]  # neither block ran: the starter 3 is there
    assert steps[0]["observation"].endswith("1:3") and rec.status == "submitted" and rec.best_submission == 10.0


# -- a huge reply ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["tool-calls", "text-format"])
def test_a_huge_reply_is_kept_in_the_history_cut_to_a_bound_with_a_marker(tiny, tmp_path, mode):
    huge = {"filler": 2_000_000, "tool": "bash", "args": {"command": "echo 7 > answer.txt"}}
    rec, steps, requests, _ = play(tiny, tmp_path, [huge, {"tool": "submit"}], tool_calling=mode == "tool-calls")
    assert steps[0]["action"] == "echo 7 > answer.txt"  # the reply's command, read from the whole reply
    kept = [m for m in requests[1]["messages"] if m["role"] == "assistant"][0]["content"]
    assert 10_000 < len(kept) < 25_000 and "characters of this reply cut to save context" in kept
    assert len(steps[0]["thought"]) < 25_000
    assert rec.usage[1]["prompt_tokens"] < 15_000  # the next prompt: not the 2 MB reply again
    assert rec.status == "submitted" and rec.best_submission == 10.0
