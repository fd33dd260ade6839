"""The ``llm`` agent's context management (``pytest_mlgym.agents.context``), end to end through
litellm's real call path and the ``mlgym-scripted`` provider: what is sent always keeps the task,
the newest observation and the agent's last message, within the limit litellm gives or the smaller
window the provider reports (a script's ``context_window``), with each message counted once."""
from __future__ import annotations

import json
import re

import pytest

from scripted_play import play_scripted

SOLVE = [{"tool": "open", "args": {"path": "answer.txt"}}, {"tool": "edit", "args": {"start": 1, "end": 1, "text": "7\n"}},
         {"tool": "validate"}, {"tool": "submit"}]
CUT = "characters cut to save context"


def play(task, tmp_path, replies, script_extra=None, env_steps=40, **params):
    p = play_scripted(task, tmp_path, replies, script_extra=script_extra, env_steps=env_steps,
                      **{"num_retries": 0, **params})
    return p.record, p.steps, p.requests, p.agent


def create(n: int, lines: int = 150) -> dict:
    text = "".join(f"value_{n}_{i} = {i} * {n}  # a line of a long file\n" for i in range(lines))
    return {"tool": "create", "args": {"path": f"f{n}.py", "text": text}, "text": f"Writing f{n}.py."}


def write(n: int, lines: int = 120) -> dict:
    """A long shell command that prints nothing: a long assistant message, a short observation."""
    text = "".join(f"value_{n}_{i} = {i} * {n}  # a line of a long file\n" for i in range(lines))
    return {"tool": "bash", "args": {"command": f"cat > f{n}.py <<'EOF'\n{text}EOF"}}


def echo(word: str) -> dict:
    return {"tool": "bash", "args": {"command": f"echo {word}"}}


def valid_pairing(messages: list[dict]) -> bool:
    """Every tool message answers a tool call of the assistant message before it (as APIs require)."""
    ids: set[str] = set()
    for m in messages:
        if m["role"] == "assistant":
            ids = {c["id"] for c in m.get("tool_calls") or []}
        elif m["role"] == "tool" and m["tool_call_id"] not in ids:
            return False
    return True


def step_of(message: dict) -> int:
    return int(re.search(r"\(step (\d+)/", message["content"]).group(1))


def newest_in_full(requests: list[dict], steps: list[dict]) -> list[bool]:
    """For each request after the first: whether its last message carries the last observation whole."""
    out = []
    for r in requests[1:]:
        last = r["messages"][-1]
        if last["role"] != "system":
            out.append(steps[step_of(last) - 2]["observation"] in last["content"])
    return out


def test_old_assistant_messages_are_elided_and_a_bounded_tail_is_sent_whole(tiny, tmp_path):
    replies = [create(1), *[echo(f"word{n}") for n in range(2, 9)], {"tool": "submit"}]
    rec, steps, requests, _ = play(tiny, tmp_path, replies, history=3)
    assert rec.status == "submitted"
    sent = requests[-1]["messages"]
    assert sent[0]["role"] == "system" and sent[1]["content"].startswith("# Task:")
    said = [m for m in sent if m["role"] == "assistant"]
    assert len(said) == 8  # none dropped: everything fits
    old = json.loads(said[0]["tool_calls"][0]["function"]["arguments"])  # the create, older than the tail
    assert old["path"] == "f1.py" and CUT in old["text"] and len(old["text"]) < 1000
    assert old["text"].startswith("value_1_0 = 0") and old["text"].endswith("value_1_149 = 149 * 1  # a line of a "
                                                                           "long file\n")
    assert [json.loads(m["tool_calls"][0]["function"]["arguments"]) for m in said[-4:]] == \
        [{"command": f"echo word{n}"} for n in range(5, 9)]  # the tail, whole
    observations = [m["content"] for m in sent if m["role"] == "tool"]
    assert [o.split(":")[0] for o in observations[:5]] == [f"(output of step {n} omitted to save context"
                                                           for n in range(1, 6)]
    assert all("omitted" not in o for o in observations[-3:]) and "word8" in observations[-1]
    assert all(valid_pairing(r["messages"]) for r in requests)


def test_over_the_limit_old_turns_are_dropped_whole_and_the_task_says_which(tiny, tmp_path):
    replies = [*[write(n) for n in range(1, 17)], echo("latest"), *SOLVE]
    rec, steps, requests, agent = play(tiny, tmp_path, replies, context_limit=3000)
    assert rec.status == "submitted" and rec.best_submission == 10.0
    trimmed = [r["messages"] for r in requests if "are omitted to save context" in r["messages"][1]["content"]]
    assert len(trimmed) >= 5
    for sent in trimmed:
        assert sent[0]["role"] == "system" and sent[1]["content"].startswith("# Task:")
        assert re.search(r"\(steps 1 to \d+ are omitted to save context", sent[1]["content"])
        assert sent[2]["role"] == "assistant"  # a turn starts after the task, whole
        assert len([m for m in sent if m["role"] == "assistant"]) < step_of(sent[-1]) - 1
    assert all(valid_pairing(r["messages"]) for r in requests)
    assert all(newest_in_full(requests, steps))
    assert agent.context.sent <= 3000


def test_an_observation_too_long_alone_is_cut_to_its_head_and_tail(tiny, tmp_path):
    rec, steps, requests, agent = play(tiny, tmp_path, [{"tool": "bash", "args": {"command": "seq 3000"}}, *SOLVE],
                                       context_limit=2500)
    assert rec.status == "submitted" and rec.best_submission == 10.0
    last = requests[1]["messages"][-1]
    assert CUT in last["content"] and last["content"].startswith("1\n2\n3\n")
    assert "\n3000\n" in last["content"] and "(step 2/" in last["content"]  # the tail, with the step counter
    assert len(last["content"]) < len(steps[0]["observation"])
    assert all(valid_pairing(r["messages"]) for r in requests)


@pytest.mark.parametrize("tools", [True, False], ids=["tool-calls", "text-format"])
def test_assistant_messages_that_alone_exceed_the_window_never_blind_the_agent(tiny, tmp_path, tools):
    # eight long commands (about 1,500 tokens each) in a 3,000-token window, then observations to read
    replies = [*[write(n) for n in range(1, 9)], *[echo(f"marker{n}") for n in range(4)], *SOLVE]
    rec, steps, requests, _ = play(tiny, tmp_path, replies, script_extra={"context_window": 3000}, history=10,
                                   tool_calling=tools)
    assert rec.status == "submitted" and rec.best_submission == 10.0
    full = newest_in_full(requests, steps)
    assert len(full) >= 14 and all(full)  # every observation, the newest, reached the model whole
    for r in requests:  # whole turns are dropped: the roles still alternate after the task
        roles = [m["role"] for m in r["messages"][2:]]
        assert roles == (["assistant", "tool"] if tools else ["assistant", "user"]) * (len(roles) // 2)
    for n in range(4):
        seen = [r["messages"][-1]["content"] for r in requests if f"marker{n}\n" in r["messages"][-1]["content"]]
        assert seen and "omitted" not in seen[-1]


def test_each_message_is_counted_once_and_a_fit_is_a_sum(tiny, tmp_path):
    replies = [*[{"tool": "bash", "args": {"command": f"seq {100 + n}"}} for n in range(12)], {"tool": "submit"}]
    rec, _, requests, agent = play(tiny, tmp_path, replies, history=2)
    history = agent.context
    calls, counted = history.calls, history.counted
    assert calls <= 4 * len(agent.messages)  # a message's full and short forms, not every message every call
    assert counted < sum(u["prompt_tokens"] for u in rec.usage) / 3
    history.fit(agent.messages)  # the last reply (submit) is new: it alone is counted, and the one it pushes
    assert history.calls - calls <= 2  # out of the tail, in its short form
    calls, counted = history.calls, history.counted
    history.fit(agent.messages)  # nothing new: nothing is counted again
    assert (history.calls, history.counted) == (calls, counted)


def test_a_window_smaller_than_litellm_says_lowers_the_limit_and_keeps_the_newest(tiny, tmp_path):
    # litellm gives an unknown model 27,904 tokens; the provider takes 2,200: the fourth output (seq 700,
    # about 2,100 tokens) does not fit beside the task even alone
    looks = [{"tool": "bash", "args": {"command": f"seq {n}"}} for n in (150, 151, 152, 700)]
    rec, steps, requests, agent = play(tiny, tmp_path, [*looks, *SOLVE], script_extra={"context_window": 2200},
                                       history=10)
    assert rec.status == "submitted" and rec.best_submission == 10.0
    for r in requests[1:]:  # the newest observation is never a placeholder: whole, or its head and tail
        last = r["messages"][-1]["content"]
        assert not last.startswith("(output of step") and re.search(r"\(step \d+/40", last)
        assert last.startswith("1\n2\n3\n") or step_of(r["messages"][-1]) > 5
    full = newest_in_full(requests, steps)
    assert full[:3] == [True] * 3 and all(full[-3:])  # cut only where it alone did not fit
    assert all(CUT in r["messages"][-1]["content"] for r, whole in zip(requests[1:], full) if not whole)
    assert len(requests) > len(rec.usage)  # some calls were refused, then sent again smaller
    assert agent.context_limit < 5000  # lowered from litellm's 27,904 (counted with another tokenizer)
