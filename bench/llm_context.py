"""The llm agent's context fit on a ~190k-token history (the model's own long messages fill it).

A history as a long episode leaves it: the system message, the task, then turns of an assistant
message (a ``create`` of a ~4,000-character file) and its observation, about 190k tokens in all,
fitted to gpt-4o's limit (128k less max_tokens). Prints the time of a cold fit (every message
counted: a fresh History, e.g. a resumed episode) and of a warm one (one new turn since the last
fit: what each later step pays), as the median of several runs, with the default ``history: 5`` and
with ``history: 40`` and every assistant message kept while it fits (the old code's rule: the
trimming does the work). On a checkout from before
``agents/context.py`` it times the old ``_fitted`` (a re-count of the whole prompt per dropped
observation) instead. A figure, no assertion.
Usage: python bench/llm_context.py [--quick]
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pytest_mlgym.agents import TaskInfo
from pytest_mlgym.agents.llm import LLMAgent, litellm

MODEL = "openai/gpt-4o"
TASK = TaskInfo(id="bench", name="bench", description="", metric="score", direction="max", baseline=0.0,
                artefact="model.py", baseline_command=None, max_steps=500, seed=0)


def turn(n: int) -> list[dict]:
    code = "".join(f"def layer_{n}_{i}(x, w={i}):\n    return relu(x @ W{i} + b{i}) * w  # {n}\n" for i in range(50))
    call = {"id": f"call_{n}", "type": "function",
            "function": {"name": "create", "arguments": json.dumps({"path": f"m{n}.py", "text": code})}}
    output = "\n".join(f"epoch {e}: loss {1 / (e + n + 1):.6f} acc {e / 40:.4f}" for e in range(40))
    return [{"role": "assistant", "content": f"Step {n}: I will write m{n}.py and train it.", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call_{n}", "content": output, "mlgym_observation": n}]


def agent_with(turns: int, keep: int, tail: int = 4) -> LLMAgent:
    agent = LLMAgent(MODEL, tool_calling=True, history=keep)
    agent.reset(TASK)
    if hasattr(agent, "context"):
        agent.context.tail = tail
    agent.messages = [{"role": "system", "content": "You are a research agent. " * 200},
                      {"role": "user", "content": "# Task: train the best model you can. " * 50}]
    for n in range(1, turns + 1):
        agent.messages += turn(n)
    return agent


def fit(agent: LLMAgent) -> list[dict]:
    if hasattr(agent, "context"):
        return agent.context.fit(agent.messages)
    return agent._fitted()  # type: ignore[attr-defined]  # the old trimming, before agents/context.py


def tokens(messages: list[dict]) -> int:
    return litellm.token_counter(model=MODEL, messages=messages)


def bench(turns: int, keep: int, repeat: int, tail: int = 4) -> None:
    colds, warms = [], []
    for _ in range(repeat):
        agent = agent_with(turns, keep, tail)
        t0 = time.perf_counter()
        sent = fit(agent)
        colds.append(time.perf_counter() - t0)
        agent.messages += turn(turns + 1)
        t0 = time.perf_counter()
        fit(agent)
        warms.append(time.perf_counter() - t0)
    shown = (tail if tail < 1000 else "all") if hasattr(agent, "context") else "all (the old rule)"
    print(f"  history {keep}, tail {shown}: {tokens(sent):,} tokens sent; "
          f"cold fit (every message counted) "
          f"{statistics.median(colds) * 1000:.0f} ms, warm fit (one new turn) {statistics.median(warms) * 1000:.0f} ms")


def main(argv: list[str]) -> int:
    repeat = 3 if "--quick" in argv else 7
    head = agent_with(0, 5).messages
    per_turn = tokens(head + turn(1)) - tokens(head)
    turns = -(-(190_000 - tokens(head)) // per_turn)
    agent = agent_with(turns, 5)
    which = "History.fit" if hasattr(agent, "context") else "the old _fitted"
    print(f"{which}: a {tokens(agent.messages):,}-token history ({turns} turns) fitted to "
          f"{agent.context_limit:,} tokens")
    bench(turns, 5, repeat)  # the default: the last 5 observations
    bench(turns, 40, repeat, tail=1000)  # more kept while it fits: the trimming does the work
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
