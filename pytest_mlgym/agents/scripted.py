"""``mlgym-scripted``: a litellm provider that replays scripted replies, for offline runs and tests.

``model: mlgym-scripted/<path to a script>`` sends every call through litellm's real call path
(retries, cost, tool-call parsing) to this provider, registered with ``litellm.custom_provider_map``.
A script is YAML::

    context_window: 6000        # optional: longer prompts raise ContextWindowExceededError
    replies:                    # one entry per model call, in order
      - tool: open              # a tool call (needs native tool calling)
        args: {path: train.py}
        text: Let me look at the code.   # optional content beside the call
      - text: |                 # a plain reply (the text action format)
          ```
          python train.py
          ```
      - error: rate_limit       # rate_limit | server_error | timeout | not_found | auth | bad_request | content_policy
      - {error: rate_limit, retry_after: 2}      # the error's HTTP response says `Retry-After: 2`
      - {hang: 30}              # the provider blocks 30 s before it answers (the rest of the entry)
      - {text: "partial repl", finish: length}   # a reply cut off by the token limit (a tool call
                                                 # with it has its JSON arguments cut in half)
      - {filler: 2000000, text: "..."}           # 2 MB of text before the reply's text (a huge reply)

An error is raised as litellm's exception class for it, carrying a real ``httpx.Response`` (status
code and headers) as a provider's would, so litellm reads ``Retry-After`` from it as from any
provider. ``delay_s`` is an older name of ``hang``.

Each episode reads the script from its start (the agent sends an episode id in the call's
metadata). Past the end the model answers ``submit``. Tokens are counted with litellm's token
counter, so costs come from litellm's own pricing (``input_cost_per_token`` in the agent file).
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
import warnings
from pathlib import Path

import httpx
import yaml

from ..task import load_yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch prices at import
with warnings.catch_warnings():  # pydantic complains about litellm's own types at import
    warnings.filterwarnings("ignore", message=r".*`ReadOnly` qualifier")
    import litellm
from litellm import CustomLLM
from litellm.types.utils import ChatCompletionMessageToolCall, Choices, Function, Message, ModelResponse, Usage

PROVIDER = "mlgym-scripted"
PROVIDER_URL = "http://mlgym-scripted.invalid/v1/chat/completions"  # the request an error's response answers
ERRORS = {  # name -> (HTTP status, litellm's class for it)
    "rate_limit": (429, lambda m, r: litellm.RateLimitError("scripted: rate limit", llm_provider=PROVIDER, model=m,
                                                            response=r)),
    "server_error": (500, lambda m, r: litellm.InternalServerError("scripted: server error", llm_provider=PROVIDER,
                                                                   model=m, response=r)),
    "timeout": (408, lambda m, r: litellm.Timeout("scripted: timed out", model=m, llm_provider=PROVIDER, response=r)),
    "not_found": (404, lambda m, r: litellm.NotFoundError(f"scripted: model {m} does not exist",
                                                          llm_provider=PROVIDER, model=m, response=r)),
    "auth": (401, lambda m, r: litellm.AuthenticationError("scripted: invalid API key", llm_provider=PROVIDER,
                                                           model=m, response=r)),
    "bad_request": (400, lambda m, r: litellm.BadRequestError("scripted: the request holds what the API refuses",
                                                              llm_provider=PROVIDER, model=m, response=r)),
    "content_policy": (400, lambda m, r: litellm.ContentPolicyViolationError(
        "scripted: the request violates the content policy", llm_provider=PROVIDER, model=m, response=r)),
}
FILLER = "All work and no play makes a dull reply. "


class ScriptError(Exception):
    """A script that cannot be read; the message names the file and the entry."""


def load(path: str | Path) -> dict:
    path = Path(path)
    try:
        raw = load_yaml(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ScriptError(f"{path}: cannot read the script: {' '.join(str(e).split())}") from None
    if isinstance(raw, list):
        raw = {"replies": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("replies"), list):
        raise ScriptError(f"{path}: a script is a list of replies (or a mapping with `replies:`)")
    for n, r in enumerate(raw["replies"], 1):
        if not isinstance(r, dict) or not ({"tool", "tools", "text", "error", "hang"} & set(r)):
            raise ScriptError(f"{path}: reply {n}: give `tool` (+ `args`), `tools` (a list of those), `text`, "
                              f"`error` or `hang`")
        if "error" in r and r["error"] not in ERRORS:
            raise ScriptError(f"{path}: reply {n}: unknown error '{r['error']}'; valid: {', '.join(ERRORS)}")
    return raw


class ScriptedLLM(CustomLLM):
    def __init__(self):
        super().__init__()
        self.cursors: dict[str, int] = {}
        self.requests: dict[str, list[dict]] = {}  # episode id -> what the model was sent (for tests, debugging)
        self.lock = threading.Lock()

    def completion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding,
                   api_key, logging_obj, optional_params, acompletion=None, litellm_params=None, logger_fn=None,
                   headers=None, timeout=None, client=None) -> ModelResponse:
        script = load(model)
        metadata = (litellm_params or {}).get("metadata") or {}
        episode = str(metadata.get("mlgym_episode") or "")
        with self.lock:
            if len(self.requests) > 200:  # keep the recent episodes only
                self.requests.pop(next(iter(self.requests)))
            self.requests.setdefault(episode, []).append(
                {"messages": messages, "tools": [t["function"]["name"] for t in optional_params.get("tools") or []],
                 "schemas": optional_params.get("tools") or [], "t": time.monotonic()})
        prompt_tokens = litellm.token_counter(model="gpt-4o", messages=messages)
        window = script.get("context_window")
        if window and prompt_tokens > window:  # rejected before any reply is used up, as a real API does
            raise litellm.ContextWindowExceededError(
                f"scripted: the prompt has {prompt_tokens} tokens; the context window is {window}",
                model=model, llm_provider=PROVIDER)
        with self.lock:
            n = self.cursors.get(f"{model}:{episode}", 0)
            self.cursors[f"{model}:{episode}"] = n + 1
        replies = script["replies"]
        reply: dict = replies[n] if n < len(replies) else {"tool": "submit", "text": "The script is over: submitting."}
        if "error" in reply:
            status, error = ERRORS[reply["error"]]
            headers = {"Retry-After": str(reply["retry_after"])} if "retry_after" in reply else {}
            raise error(model, httpx.Response(status, headers=headers, request=httpx.Request("POST", PROVIDER_URL)))
        if reply.get("hang") or reply.get("delay_s"):
            time.sleep(float(reply.get("hang") or reply["delay_s"]))
        tools = optional_params.get("tools")
        text = reply.get("text")
        if reply.get("filler"):
            n = int(reply["filler"])
            text = (FILLER * (n // len(FILLER) + 1))[:n] + "\n" + (text or "")
        wanted = reply.get("tools") or ([{"tool": reply["tool"], "args": reply.get("args")}] if "tool" in reply else [])
        calls = None
        if wanted and tools:
            cut = reply.get("finish") == "length"  # a call cut off by the token limit: its JSON ends halfway
            calls = [ChatCompletionMessageToolCall(id=f"call_{uuid.uuid4().hex[:12]}", type="function",
                                                   function=Function(name=c["tool"], arguments=_json(c, cut)))
                     for c in wanted]
        elif wanted:  # no native tool calling: say the first command in the text format
            text = (text or "") + f"\n```\n{_as_text(wanted[0]['tool'], wanted[0].get('args') or {})}\n```"
        message = Message(content=text, role="assistant", tool_calls=calls)
        completion_tokens = litellm.token_counter(model="gpt-4o", text=(text or "") + json.dumps(wanted))
        model_response.choices = [Choices(index=0, message=message, finish_reason=reply.get(
            "finish", "tool_calls" if calls else "stop"))]
        model_response.model = f"{PROVIDER}/{Path(model).name}"
        model_response.usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                     total_tokens=prompt_tokens + completion_tokens)
        return model_response


def _json(call: dict, cut: bool) -> str:
    text = json.dumps(call.get("args") or {})
    return text[:len(text) // 2] if cut else text


def _as_text(tool: str, args: dict) -> str:
    from ..tooldocs import action_from_call
    return action_from_call(tool, args)


HANDLER = ScriptedLLM()


def register() -> None:
    """Make ``mlgym-scripted/...`` models callable through litellm (idempotent)."""
    if not any(p.get("provider") == PROVIDER for p in litellm.custom_provider_map):
        litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": HANDLER})
    if PROVIDER not in litellm._custom_providers:
        litellm._custom_providers.append(PROVIDER)
