"""An exception as one line, for records, observations and usage errors: its class and its message
with the line breaks folded, cut to ``limit`` characters."""
from __future__ import annotations


def one_line(e: BaseException, limit: int = 400) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"[:limit]
