"""The env's observation and action spaces: text of any characters."""
from __future__ import annotations

from gymnasium import spaces


class AnyText(spaces.Text):
    """Text of any characters (Gymnasium's ``Text`` restricts the charset; ``sample`` draws from it)."""

    def __init__(self, max_length: int = 1 << 20):
        super().__init__(max_length=max_length, min_length=0)

    def contains(self, x) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length
