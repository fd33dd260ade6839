"""One model call of the ``llm`` agent under real faults: retries, Retry-After, a bounded wait.

:func:`complete` sends one request through ``litellm.completion`` and retries what a provider's
failure can be retried for (HTTP 408, 409, 429, 5xx and connection errors: ``litellm._should_retry``),
waiting what litellm's own retry arithmetic says (``litellm.utils._calculate_retry_after``: the
error response's ``Retry-After`` header when it asks for up to 60 s, else exponential backoff with
jitter). It retries here rather than through ``num_retries`` because litellm's ``completion``
retries with a fixed exponential wait that never reads ``Retry-After``.

Each attempt is capped by ``timeout_s`` and by the episode's time left. The cap goes to litellm
(``timeout=``, which HTTP providers enforce), and the attempt runs in a daemon thread the agent
stops waiting for at the cap, so a custom provider that hangs is bounded too: the call is abandoned
and the failure is litellm's ``Timeout``. Every failure after that ends the episode through
:class:`~pytest_mlgym.agents.EpisodeEnd`: ``infra_error`` for the provider's (the reason starts with
the error class), ``error`` for anything else; a ``ContextWindowExceededError`` goes back to the
caller, which trims the history.
"""
from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

from ..errors import one_line
from . import EpisodeEnd
from .scripted import litellm

MAX_REPLY_CHARS = 20_000  # of a reply's text kept in the history; the rest is cut, with a marker


def complete(request: dict[str, Any], *, num_retries: int, timeout_s: float, deadline: float) -> Any:
    """``litellm.completion(**request)``, retried ``num_retries`` times at most, ending by ``deadline``
    (a ``time.monotonic()`` value: when the episode's time is up)."""
    from litellm.litellm_core_utils.exception_mapping_utils import _get_response_headers

    attempt = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise EpisodeEnd("time_limit", "the episode's time ran out before the model call")
        cap = min(timeout_s, left)
        try:
            return _bounded({**request, "timeout": cap, "num_retries": 0, "max_retries": 0}, cap,
                            "the episode's time left" if cap < timeout_s else "timeout_s")
        except litellm.ContextWindowExceededError:
            raise
        except Exception as e:
            failed = f"{one_line(e)} (model call failed after up to {num_retries} retries)"
            if isinstance(e, litellm.Timeout) and deadline - time.monotonic() < 1.0:
                # the episode's time ran out while the model was answering: its time limit, not a provider
                # failure (a model must not buy a re-run, --mlgym-resume, by answering slowly at the end)
                raise EpisodeEnd("time_limit", f"the episode's time ran out during a model call "
                                               f"({one_line(e)[:200]})") from None
            if not _provider_failure(e):
                raise EpisodeEnd("error", failed) from None
            status = getattr(e, "status_code", None)
            if isinstance(status, int) and not litellm._should_retry(status):  # a bad key, an unknown model
                raise EpisodeEnd("infra_error", f"{one_line(e)[:300]} (model call failed; HTTP {status} is not "
                                                f"retried)") from None
            if attempt >= num_retries:
                raise EpisodeEnd("infra_error", failed) from None
            headers = _get_response_headers(e)
            asked = litellm.utils._get_retry_after_from_exception_header(headers) if headers else None
            left = deadline - time.monotonic()
            if asked is not None and asked > left:
                raise EpisodeEnd("infra_error", f"{one_line(e)[:300]} (the provider asks to retry after {asked} s, "
                                                f"more than the {left:.0f} s left in the episode)") from None
            wait = litellm.utils._calculate_retry_after(num_retries - attempt, num_retries, headers)
            if wait >= left:
                raise EpisodeEnd("infra_error", f"{one_line(e)[:300]} (no time left in the episode to retry "
                                                f"after {wait:.1f} s)") from None
            time.sleep(wait)
            attempt += 1


def _bounded(request: dict[str, Any], cap: float, why: str) -> Any:
    """The call, waited for ``cap`` seconds at most: past it, the thread is abandoned (it ends when the
    provider returns) and the call has failed with litellm's ``Timeout``."""
    done, box = threading.Event(), {}
    context = contextvars.copy_context()  # litellm keeps per-call state in context variables

    def call() -> None:
        try:
            box["response"] = context.run(litellm.completion, **request)
        except BaseException as e:  # handed to the caller
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=call, name="mlgym-model-call", daemon=True).start()
    if not done.wait(cap):
        raise litellm.Timeout(f"no reply within {cap:.1f} s (the call's cap: {why}); the call was abandoned",
                              model=request["model"], llm_provider=request["model"].split("/", 1)[0])
    if "error" in box:
        raise box["error"]
    return box["response"]


def bounded_text(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    """``text`` with its middle cut to keep ``limit`` characters, and a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    head, tail = text[:limit // 2], text[len(text) - limit // 2:]
    cut = len(text) - len(head) - len(tail)
    return f"{head}\n[... {cut:,} characters of this reply cut to save context ...]\n{tail}"


def _provider_failure(e: BaseException) -> bool:
    """Whether a failed call is the provider's (rate limit, 5xx, connection, timeout, a bad key or an
    unknown model): an infrastructure failure, never the agent's. A request the provider refuses for
    what it holds (400 BadRequest, content policy, 422) is not: the agent's own history made it, and a
    model must not buy a re-run (``--mlgym-resume``) by provoking one. Other exceptions are ``error``."""
    import openai

    if isinstance(e, (openai.BadRequestError, openai.UnprocessableEntityError)):
        return False
    return isinstance(e, (openai.APIError, litellm.Timeout))
