"""``llm``: the agentic harness for any base model, through litellm.

``agents/claude.yaml`` and friends name a litellm model and its settings; ``--agent
litellm:<model>`` takes any litellm model string. Each step the model sees the observation with
the step counter and what is left of its budget, and answers with one command: a native tool
call (the ACI tools as function schemas) or, for models without tool calling, one fenced block of
text (a reply with several blocks runs none and gets a format error naming the count, as in MLGym).
What is sent is the history fitted to the context limit by :mod:`.context`: the task, the newest
observation and the last ``history`` observations, the agent's last messages in full, older ones
elided or dropped (long tool arguments cut), with incremental token counts. A reply's text is
kept in the history cut to ``calls.MAX_REPLY_CHARS`` (with a marker); the command is read from the
whole reply.

Each call goes through :mod:`.calls`: retries of what a retry can cure (429, 5xx, connection
errors, timeouts) wait as litellm's retry arithmetic says, honouring ``Retry-After`` (one longer
than the episode's time left ends it at once); each attempt is capped by ``timeout_s`` and the
episode's time left, for any provider, a hanging one too; a provider's failure ends the episode as
``infra_error``. Cost and tokens per call come from litellm's pricing. An unparseable reply gets
one corrective re-prompt, then ends the episode as an error; a reply cut off at ``max_tokens``
(finish reason ``length``) is told so, with how to split the work, and ends the episode only after
``MAX_CUT_REPLIES`` in a row; reaching ``cost_limit`` ends it with status ``cost_limit`` (what is
in the workspace is scored).
"""
from __future__ import annotations

import atexit
import difflib
import json
import re
import time
import uuid
from pathlib import Path

from filelock import FileLock

from ..tooldocs import action_from_call, docs, schemas
from . import AgentError, EpisodeEnd, TaskInfo, scripted
from ..errors import one_line
from .calls import bounded_text, complete
from .chat import COST_LIMIT, load_prompts, observation_turn, system_message, task_message
from .context import History, token_counter
from .serve import ACTION_GRAMMAR
from .scripted import litellm  # imported there without fetching prices or printing warnings

litellm.suppress_debug_info = True
scripted.register()

FENCE = re.compile(r"```[^\n`]*\n(.*?)\n?```", re.S)
MEMORY = {"memory_read": ("memory_read", "Show your notes from earlier attempts at this task."),
          "memory_write": ("memory_write <text>", "Add a note that your later attempts at this task will see.")}
MAX_MEMORY_CALLS = 5  # memory calls in a row before the model must act
MAX_CUT_REPLIES = 4  # replies in a row cut off by max_tokens that end the episode (unparseable ones: 2)
CUT_REPLY = """Your reply was cut off by the token limit ({max_tokens} tokens a reply) before its command was
complete, so nothing was run. Keep each reply well under the limit: to write a long file, `create`
it with a short first part, then add the rest with `edit` or `insert` in parts of a few dozen lines,
one part per step."""


class LLMAgent:
    policy = "llm"

    def __init__(self, model: str, temperature: float = 0.0, max_steps: int = 50, cost_limit: float = COST_LIMIT,
                 context_limit: int | None = None, prompts: str = "default", tool_calling: bool | str = "auto",
                 history: int = 5, max_tokens: int = 4096, num_retries: int = 4, timeout_s: float = 600,
                 api_base: str | None = None, api_key: str | None = None, memory: bool = False,
                 memory_dir: str | None = None, input_cost_per_token: float | None = None,
                 output_cost_per_token: float | None = None, check_model: bool = True, name: str | None = None,
                 serve: dict | None = None, grammar: bool | str = False):
        self.model, self.temperature, self.max_steps, self.cost_limit = model, temperature, max_steps, cost_limit
        self.history, self.max_tokens, self.num_retries, self.timeout_s = history, max_tokens, num_retries, timeout_s
        self.api_base, self.api_key, self.memory = api_base or None, api_key or None, memory
        if serve and not self.api_base:  # used outside pytest (which starts one server per session)
            from .serve import LlamaServer
            server = LlamaServer(**serve)
            atexit.register(server.stop)
            self.api_base = server.url
        self.grammar = ACTION_GRAMMAR if grammar is True else (grammar or None)
        self.name = name or model
        self.prompts = load_prompts(prompts)
        self.tools = supports_tools(model) if tool_calling == "auto" else bool(tool_calling)
        self.context_limit = context_limit or context_window(model) - max_tokens
        self.pricing = {k: v for k, v in (("input_cost_per_token", input_cost_per_token),
                                          ("output_cost_per_token", output_cost_per_token)) if v is not None}
        from ..task import default_cache_dir
        self.memory_dir = Path(memory_dir) if memory_dir else default_cache_dir() / "memory"
        self.cost_usd, self.tokens = 0.0, 0
        self.usage: list[dict] = []  # one entry per model call

    @staticmethod
    def check(model: str, api_base: str | None = None, api_key: str | None = None, check_model: bool = True,
              serve: dict | None = None, **_other) -> None:
        """Fail at session start, in one line, for a model that cannot be called from here."""
        if serve:  # a local server the session starts: it needs its package and model file, nothing else
            from . import serve as local
            local.check(serve)
            return
        try:
            _, provider, _, _ = litellm.get_llm_provider(model, api_base=api_base)
        except Exception:  # litellm raises a multi-line BadRequestError
            raise AgentError(f"model '{model}': litellm does not know its provider; write it as "
                             f"<provider>/<model>, e.g. anthropic/claude-sonnet-4-6 or hosted_vllm/<name>") from None
        if provider == scripted.PROVIDER:
            try:
                scripted.load(model.split("/", 1)[1])
            except scripted.ScriptError as e:
                raise AgentError(str(e)) from None
            return
        if api_base:
            answers(api_base)
        env = litellm.validate_environment(model=model, api_key=api_key, api_base=api_base)
        if not env.get("keys_in_environment", True):
            keys = env.get("missing_keys") or ["an API key"]
            what = f"{keys[0]} is not set" if len(keys) == 1 else f"none of {', '.join(keys)} is set"
            raise AgentError(f"{what}: the model {model} needs it (export it, or run another agent)")
        known = set(litellm.models_by_provider.get(provider) or ())
        bare = model.split("/", 1)[1] if model.startswith(f"{provider}/") else model
        listed = known | set(litellm.model_cost)
        if check_model and not api_base and known and not ({bare, f"{provider}/{bare}"} & listed):
            close = difflib.get_close_matches(bare, sorted(m.split("/", 1)[-1] for m in known), n=3)
            raise AgentError(f"model '{model}' does not exist for provider {provider} (as far as litellm {_version()} "
                             f"knows{'; did you mean ' + ', '.join(close) if close else ''}? set check_model: false "
                             f"for a newer one)")

    # -- the Agent protocol --------------------------------------------------------------------
    def reset(self, task: TaskInfo) -> None:
        self.task = task
        self.episode = uuid.uuid4().hex
        self.started = time.monotonic()
        self.messages: list[dict] = []
        self.step = 0
        self.context = History(token_counter(self.model), self.prompts, self.context_limit, keep=self.history)
        self.answer_to: list[str] = []  # tool-call ids the next observation answers
        self.cost_usd, self.tokens, self.usage = 0.0, 0, []
        self.thought = ""

    def act(self, observation: str) -> str:
        self._observe(observation)
        self.step += 1
        if self.step > self.max_steps:
            self.thought = f"My own step budget ({self.max_steps}) is used up: submitting."
            return "submit"
        if self.cost_usd >= self.cost_limit:
            raise EpisodeEnd("cost_limit", f"cost limit of ${self.cost_limit:g} reached "
                                           f"(${self.cost_usd:.4f} spent in {len(self.usage)} calls)")
        bad, cut, memory_calls = None, 0, 0
        while True:
            message, finish = self._call()
            if _cut(message, finish):  # told as such, with its own allowance: not a format error
                cut += 1
                if cut >= MAX_CUT_REPLIES:
                    raise EpisodeEnd("error", f"{cut} replies in a row were cut off by the token limit (max_tokens "
                                              f"{self.max_tokens}) before their command was complete")
                if message.get("tool_calls"):  # the history keeps a call whose arguments are JSON
                    self.messages[-1]["tool_calls"][0]["function"]["arguments"] = "{}"
                self._reply(self.prompts.get("cut_reply", CUT_REPLY).format(max_tokens=self.max_tokens).strip())
                continue
            action, error = self._parse(message)
            if action is not None and action.split(" ", 1)[0].split("\n", 1)[0] in MEMORY and self.memory:
                memory_calls += 1
                self._reply(self._remember(action) if memory_calls <= MAX_MEMORY_CALLS else
                            "Too many memory calls in a row: act on the task now.")
                continue
            if action is not None:  # the thought is the reply's text without its command block
                content = message.get("content") or ""
                blocks = list(FENCE.finditer(content))
                if blocks and not message.get("tool_calls"):
                    content = content[:blocks[-1].start()] + content[blocks[-1].end():]
                self.thought = bounded_text(content.strip().removeprefix("DISCUSSION").strip())
                return action
            if bad is not None:
                raise EpisodeEnd("error", f"unparseable reply after a corrective re-prompt: {error}")
            bad = error
            how = self.prompts["format_error_tools" if self.tools else "format_error_text"]
            self._reply(self.prompts["format_error"].format(error=error, how=how).strip())

    # -- messages ---------------------------------------------------------------------------
    def _observe(self, observation: str) -> None:
        budget = min(self.max_steps, self.task.max_steps)  # one step count: the first message's and the counter's
        if not self.messages:  # the system prompt has the tool docs; the first message, the task
            commands = docs(self.task.artefact, self.task.step_s, tools=self.tools)
            system = system_message(self.prompts, commands, tools=self.tools, memory=self.memory)
            task = task_message(observation, commands, max_steps=budget)
            self.messages = [{"role": "system", "content": system}, {"role": "user", "content": task}]
            return
        left = max(0.0, self.task.episode_s - (time.monotonic() - self.started)) / 60
        text = observation_turn(self.prompts, observation, step=self.step + 1, max_steps=budget,
                                spent=self.cost_usd, cost_limit=self.cost_limit, minutes_left=left)
        self._reply(text, observation=True)

    def _reply(self, text: str, observation: bool = False) -> None:
        """Answer the last assistant message: a tool message per tool call, or a user message."""
        mark = {"mlgym_observation": self.step} if observation else {}
        if self.answer_to:
            first, *rest = self.answer_to
            self.messages.append({"role": "tool", "tool_call_id": first, "content": text, **mark})
            for other in rest:
                self.messages.append({"role": "tool", "tool_call_id": other,
                                      "content": "Not run: one tool call per turn (only the first one ran)."})
            self.answer_to = []
        else:
            self.messages.append({"role": "user", "content": text, **mark})

    # -- one model call ---------------------------------------------------------------------------
    def _call(self) -> tuple[dict, str]:
        while True:
            msgs = self.context.fit(self.messages)
            t0 = time.monotonic()
            request = dict(
                model=self.model, messages=msgs, temperature=self.temperature, max_tokens=self.max_tokens,
                tools=schemas(MEMORY if self.memory else None) if self.tools else None,
                api_base=self.api_base, api_key=self.api_key,
                metadata={"mlgym_episode": self.episode, "mlgym_task": self.task.id}, **self.pricing,
                **({"extra_body": {"grammar": self.grammar}} if self.grammar else {}))
            try:
                resp = complete(request, num_retries=self.num_retries, timeout_s=self.timeout_s,
                                deadline=self.started + self.task.episode_s)
            except litellm.ContextWindowExceededError as e:
                if not self.context.shrink():  # the model's window is smaller than litellm says
                    raise EpisodeEnd("error", f"context window exceeded with the history already trimmed to "
                                              f"its least: {one_line(e)}") from None
                self.context_limit = self.context.limit  # for the agent's later episodes too
                continue
            break
        latency = time.monotonic() - t0
        usage = getattr(resp, "usage", None)
        cost = _cost(resp)
        prompt, completion = getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0
        self.cost_usd += cost
        self.tokens += prompt + completion
        self.usage.append({"step": self.step, "model": self.model, "prompt_tokens": prompt,
                           "completion_tokens": completion, "cost_usd": round(cost, 8), "latency_s": round(latency, 3)})
        choice = resp.choices[0]
        message = {"role": "assistant", "content": choice.message.content or ""}  # parsed whole, stored bounded
        calls = getattr(choice.message, "tool_calls", None) or []
        if calls:
            message["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                "name": c.function.name, "arguments": c.function.arguments or "{}"}} for c in calls]
            self.answer_to = [c.id for c in calls]
        self.messages.append({**message, "content": bounded_text(message["content"])})
        return message, choice.finish_reason or "stop"

    def _parse(self, message: dict) -> tuple[str | None, str]:
        calls = message.get("tool_calls") or []
        if calls:
            fn = calls[0]["function"]
            try:
                args = json.loads(fn["arguments"] or "{}")
                if not isinstance(args, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                return None, f"the arguments of {fn['name']} are not a JSON object ({e})"
            if fn["name"] in MEMORY and self.memory:
                return (fn["name"] + (f" {args.get('text', '')}" if fn["name"] == "memory_write" else "")), ""
            try:
                return action_from_call(fn["name"], args), ""
            except Exception as e:  # ToolError: a message for the model
                return None, str(e)
        blocks = FENCE.findall(message.get("content") or "")
        if len(blocks) > 1:  # as MLGym: which one was meant is not for the harness to guess
            return None, f"it has {len(blocks)} command blocks, and a reply runs exactly one, so none was run"
        if blocks and blocks[0].strip():
            return blocks[0].strip("\n"), ""
        return None, "it contains no command" + (" (no tool call)" if self.tools else " in a fenced block")

    # -- memory ------------------------------------------------------------------------------------
    def _remember(self, action: str) -> str:
        path = self.memory_dir / _safe(self.name) / f"{_safe(self.task.id)}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if action.startswith("memory_write"):
                note = action[len("memory_write"):].strip()
                if not note:
                    return "memory_write needs the text of the note."
                with open(path, "a", encoding="utf-8") as f:
                    f.write(f"- {' '.join(note.split())}\n")
                return "Noted."
            text = path.read_text(encoding="utf-8") if path.exists() else ""
        return f"Your notes on this task:\n{text}" if text else "Your memory of this task is empty."


# -- helpers ----------------------------------------------------------------------------------------
def answers(api_base: str, timeout_s: float = 5.0) -> None:
    """Session start: the server at ``api_base`` answers HTTP (any status: an OpenAI-compatible server
    may want a key for ``/models``), else one line saying so; every episode would fail otherwise."""
    import httpx

    try:
        httpx.get(api_base.rstrip("/") + "/models", timeout=timeout_s)
    except httpx.HTTPError as e:
        raise AgentError(f"api_base {api_base} does not answer ({type(e).__name__}: {' '.join(str(e).split())[:200]}):"
                         f" start its server or fix the URL") from None


def _cut(message: dict, finish: str) -> bool:
    """Whether a reply was cut off by the token limit before its command was complete: a tool call
    whose JSON arguments end early, or a text reply without a closed command block."""
    if finish != "length":
        return False
    calls = message.get("tool_calls") or []
    if calls:
        try:
            json.loads(calls[0]["function"]["arguments"] or "{}")
            return False
        except ValueError:
            return True
    content = message.get("content") or ""
    return not FENCE.search(content) or len(re.findall(r"^\s*```", content, re.M)) % 2 == 1


def supports_tools(model: str) -> bool:
    try:
        return bool(litellm.supports_function_calling(model=model))
    except Exception:  # unknown models: use the text format
        return False


def context_window(model: str) -> int:
    try:
        return int(litellm.get_model_info(model).get("max_input_tokens") or 32_000)
    except Exception:
        return 32_000


def _cost(resp) -> float:
    cost = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")
    if cost is None:
        try:
            cost = litellm.completion_cost(completion_response=resp)
        except Exception:  # a model without a price: free as far as we know
            cost = 0.0
    return float(cost or 0.0)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _version() -> str:
    from importlib.metadata import version
    return version("litellm")
