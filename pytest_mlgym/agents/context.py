"""What the ``llm`` agent sends each call: its history fitted to the context limit.

The history (``LLMAgent.messages``) only grows; each call sends a view of it, built by
:meth:`History.fit`. The view always holds the system message, the task (the first user message),
the newest observation (cut to its head and tail with a marker only if it alone does not fit) and
the last turn, so every tool message answers a tool call that is sent. Besides, by default:

- the last ``tail`` assistant messages are sent in full; older ones are elided (their text and
  their long tool arguments cut to their head and tail with a marker, the arguments still JSON);
- the last ``keep`` observations are sent in full; older ones become ``prompts['omitted']``.

While the view is over the limit, in this order: older observations become placeholders (oldest
first), the tail shrinks to the last assistant message, the oldest turns (an assistant message and
its answers) are dropped whole (the task message then says which steps, ``prompts['dropped']``), the
last assistant message is elided, and the newest observation is cut to what is left (never below
``floor`` tokens). A provider that says the window is smaller (:meth:`History.shrink`) lowers the
limit for the rest of the episode.

Token counts are incremental: each message's count, in each of its forms, is computed once
(cached by the message's identity) and a view's count is the sum of its messages' counts.
"""
from __future__ import annotations

import json
from collections.abc import Callable

Count = Callable[[list[dict]], int]  # litellm.token_counter(messages=...) for one model
OBSERVATION = "mlgym_observation"  # the key llm.py marks an observation's message with (its step)
FULL, SHORT = "full", "short"  # a message's forms; an observation cut to n tokens is f"cut{n}"


def token_counter(model: str) -> Count:
    """litellm's token counter for ``model`` (its default tokenizer for a model it does not know)."""
    from .scripted import litellm  # imported there without fetching prices or printing warnings

    try:
        litellm.token_counter(model=model, messages=[{"role": "user", "content": "x"}])
        known: str | None = model
    except Exception:  # an unknown tokenizer: count with the default one
        known = None

    def count(messages: list[dict]) -> int:
        return int(litellm.token_counter(model=known, messages=messages) if known else
                   litellm.token_counter(messages=messages))
    return count


class History:
    """Fits an episode's messages to ``limit`` tokens (see the module's docstring)."""

    def __init__(self, count: Count, prompts: dict, limit: int, keep: int = 5, tail: int = 4,
                 elided_chars: int = 600, floor: int = 512):
        self.count, self.prompts, self.limit = count, prompts, limit
        self.keep, self.tail, self.elided_chars, self.floor = keep, tail, elided_chars, floor
        self.sent = 0  # the count of the last view
        self.calls = self.counted = 0  # the counter's calls and the tokens they counted (each message once)
        self.least = False  # whether the last view was over the limit with everything trimmed
        self._base = self._count([])  # what an empty prompt counts (the reply's priming)
        self._cache: dict[tuple[int, str], tuple[dict, tuple, dict, int]] = {}
        self._notes: dict[str, int] = {}
        self._misses = 0  # overflows in a row (since the last view the provider took)
        self._rejected = False

    # -- the view -------------------------------------------------------------------------------
    def fit(self, messages: list[dict]) -> list[dict]:
        """The messages to send: within the limit, or the least this history can send."""
        if not self._rejected:
            self._misses = 0
        self._rejected = False
        if not messages:
            return []
        n = len(messages)
        h = next((i for i, m in enumerate(messages) if m.get("role") == "user"), n - 1) + 1
        turns = _turns(messages, h)
        obs = [i for i in range(h, n) if OBSERVATION in messages[i]]
        said = [i for i in range(h, n) if messages[i].get("role") == "assistant"]
        form = {i: FULL for i in range(n)}
        for i in obs[:max(0, len(obs) - max(self.keep, 1))]:
            form[i] = SHORT
        for i in said[:max(0, len(said) - max(self.tail, 1))]:
            form[i] = SHORT
        total = self._base + sum(self._tokens(messages[i], form[i]) for i in range(n))
        limit = self.limit

        def switch(i: int, to: str) -> None:
            nonlocal total
            total += self._tokens(messages[i], to) - self._tokens(messages[i], form[i])
            form[i] = to

        for i in [*obs[:-1], *said[:-1]]:  # older observations, then the tail down to the last message
            if total <= limit:
                break
            if form[i] == FULL:
                switch(i, SHORT)
        newest = obs[-1] if obs else None
        keep = {len(turns) - 1} | {t for t, turn in enumerate(turns) if newest in turn}
        dropped: list[int] = []
        if total > limit:
            note = self._note_tokens(messages)
            for t, turn in enumerate(turns):
                if total <= limit:
                    break
                if t in keep:
                    continue
                total -= sum(self._tokens(messages[i], form[i]) for i in turn) - (0 if dropped else note)
                dropped.append(t)
        if total > limit and said and form[said[-1]] == FULL:
            switch(said[-1], SHORT)
        if total > limit and newest is not None:
            whole = self._tokens(messages[newest], form[newest])
            room = max(self.floor, limit - (total - whole))
            if room < whole:
                switch(newest, f"cut{room}")
        self.sent, self.least = total, total > limit
        gone = {i for t in dropped for i in turns[t]}
        out = [dict(self._form(messages[i], form[i])) for i in range(n) if i not in gone]
        if dropped:
            steps = [messages[i][OBSERVATION] for i in sorted(gone) if OBSERVATION in messages[i]]
            note_text = self.prompts["dropped"].format(first=steps[0] if steps else "?",
                                                       last=steps[-1] if steps else "?", turns=len(dropped))
            out[h - 1]["content"] = f"{out[h - 1].get('content') or ''}\n\n{note_text}"
        return out

    def shrink(self) -> bool:
        """The provider said the last view is over the model's window: lower the limit below it (by 10%
        the first time, 10% more each time in a row, up to half). False when that view was already the
        least this history can send."""
        if self.least:
            return False
        self._misses += 1
        self._rejected = True
        self.limit = max(1, min(self.limit, self.sent) - max(1, self.sent * min(self._misses, 5) // 10))
        return True

    # -- one message's forms and their counts -----------------------------------------------------
    def _count(self, messages: list[dict]) -> int:
        n = self.count(messages)
        self.calls, self.counted = self.calls + 1, self.counted + n
        return n

    def _tokens(self, m: dict, form: str) -> int:
        return self._entry(m, form)[3]

    def _form(self, m: dict, form: str) -> dict:
        return self._entry(m, form)[2]

    def _entry(self, m: dict, form: str) -> tuple[dict, tuple, dict, int]:
        key, print_ = (id(m), form), _fingerprint(m)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is m and hit[1] == print_:
            return hit
        sent = self._render(m, form)
        entry = (m, print_, sent, self._count([sent]) - self._base)  # holding m keeps its id from reuse
        self._cache[key] = entry
        return entry

    def _render(self, m: dict, form: str) -> dict:
        sent = {k: v for k, v in m.items() if k != OBSERVATION}
        if form == FULL:
            return sent
        text = str(m.get("content") or "")
        if OBSERVATION in m and form == SHORT:
            sent["content"] = self.prompts["omitted"].format(step=m[OBSERVATION], lines=text.count("\n") + 1)
        elif OBSERVATION in m:  # cut to n tokens: the head and the tail, by a characters-per-token estimate
            n = int(form.removeprefix("cut"))
            chars = int(len(text) * n / max(1, self._tokens(m, FULL)))
            for _ in range(6):
                sent["content"] = self._cut(text, chars)
                if self._count([sent]) - self._base <= n or chars == 0:
                    break
                chars = chars * 4 // 5
        elif m.get("role") == "assistant":
            sent["content"] = self._cut(text, self.elided_chars)
            if m.get("tool_calls"):
                sent["tool_calls"] = [{**c, "function": {**c["function"], "arguments": self._arguments(
                    c["function"].get("arguments") or "{}")}} for c in m["tool_calls"]]
        return sent

    def _arguments(self, raw: str) -> str:
        """Long values of a tool call's JSON arguments cut with a marker (still a JSON object)."""
        try:
            args = json.loads(raw)
        except ValueError:
            return json.dumps({"elided": self._cut(raw, self.elided_chars)})
        if not isinstance(args, dict):
            return json.dumps({"elided": self._cut(raw, self.elided_chars)})
        return json.dumps({k: self._cut(v, self.elided_chars) if isinstance(v, str) else v for k, v in args.items()})

    def _cut(self, text: str, chars: int) -> str:
        if len(text) <= chars:
            return text
        head, tail = chars // 2, chars - chars // 2
        marker = self.prompts["cut"].format(count=len(text) - chars)
        return f"{text[:head]}\n{marker}\n{text[len(text) - tail:] if tail else ''}"

    def _note_tokens(self, messages: list[dict]) -> int:
        """A bound on what the note of dropped steps adds (formatted with the widest step numbers)."""
        wide = max((len(str(m[OBSERVATION])) for m in messages if OBSERVATION in m), default=1)
        note = self.prompts["dropped"].format(first="9" * wide, last="9" * wide, turns=len(messages))
        if note not in self._notes:
            self._notes[note] = self._count([{"role": "user", "content": note}]) - self._base
        return self._notes[note]


def _turns(messages: list[dict], start: int) -> list[list[int]]:
    """The indices of each turn after the head: an assistant message and the answers after it."""
    turns: list[list[int]] = []
    for i in range(start, len(messages)):
        if messages[i].get("role") == "assistant" or not turns:
            turns.append([])
        turns[-1].append(i)
    return turns


def _fingerprint(m: dict) -> tuple:
    """What changes if a cached message is edited in place (its cached counts are then redone)."""
    calls = m.get("tool_calls") or []
    return (len(str(m.get("content") or "")), len(calls),
            sum(len(str((c.get("function") or {}).get("arguments") or "")) for c in calls))
