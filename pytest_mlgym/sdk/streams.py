"""Randomness the agent plays against, from a stream it cannot know.

An opponent seeded with the evaluation seed (which the agent's code is seeded with too, and can
guess) is predictable: a strategy that replays ``random.Random(seed)`` knows every move. These
streams are derived, with HMAC-SHA256, from a secret only the evaluator holds (the task's
``private/secret``, never copied into any sandbox), the seed and a purpose, so they are
deterministic for a task and seed, independent of each other, and independent of every stream
the agent's code is seeded with.

    from pytest_mlgym.sdk.streams import numpy_stream
    rng = numpy_stream(seed, "column player")      # a numpy Generator

The secret is found next to the evaluator being run (``<task>/private/secret``: 64 hex digits,
made once with ``python -c "import secrets; print(secrets.token_hex(32))"``); a lab that wants
opponents nobody outside it can replay writes its own there (its scores are then comparable
only with runs on the same secret).
"""
from __future__ import annotations

import hashlib
import hmac
import random
import sys
from pathlib import Path

SECRET = "secret"  # the file, in the evaluator's own folder (private/)
MIN_HEX = 32


class SecretMissing(RuntimeError):
    """The evaluator has no usable secret; one line saying where it belongs."""


def secret(folder: Path | None = None) -> bytes:
    """The task's secret: ``folder``/secret, by default beside the evaluator script being run."""
    main = sys.modules.get("__main__")
    where = Path(folder) if folder else Path(getattr(main, "__file__", None) or sys.argv[0]).resolve().parent
    path = where / SECRET
    try:
        text = path.read_text().strip()
    except OSError:
        raise SecretMissing(f"{path}: no evaluator secret (64 hex digits: python -c \"import secrets; "
                            f"print(secrets.token_hex(32))\" > {path})") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) * 2 < MIN_HEX:
        raise SecretMissing(f"{path}: the secret must be at least {MIN_HEX} hex digits")
    return key


def key(seed: int, purpose: str, folder: Path | None = None) -> int:
    """A 256-bit integer for (secret, seed, purpose): the root of one stream."""
    digest = hmac.new(secret(folder), f"mlgym-stream:{purpose}:{int(seed)}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest, "big")


def random_stream(seed: int, purpose: str, folder: Path | None = None) -> random.Random:
    """A ``random.Random`` for the evaluator only."""
    return random.Random(key(seed, purpose, folder))


def numpy_stream(seed: int, purpose: str, folder: Path | None = None):
    """A ``numpy.random.Generator`` for the evaluator only."""
    import numpy as np

    return np.random.default_rng(np.random.SeedSequence(key(seed, purpose, folder)))
