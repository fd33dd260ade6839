"""Which score is better: the one place that knows what a metric's direction means.

A ``Metric`` is a name and a direction (``"max"``: higher is better, ``"min"``: lower is better).
Every module that compares, ranks or picks scores asks a ``Metric`` (``task.yaml``'s
metric is one; ``Metric.of(direction)`` gives the unnamed one of a run record's direction), so the
rule is written once:

* ``better(a, b)``: ``a`` is strictly better than ``b``;
* ``best(scores)`` / ``worst(scores)``: of the scores that are numbers (``None`` and NaN skipped),
  ``None`` when there is none;
* ``order(score)``: a sort key that puts better scores first (``sorted(xs, key=m.order)``);
* ``word`` (``"higher"``/``"lower"``) and ``sign`` (``">"``/``"<"``) for the texts that say it.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

Direction = Literal["max", "min"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)


def check_direction(direction: str) -> None:
    """ValueError for anything but "max" or "min" (the one-line message every caller gives)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'max' or 'min', not {direction!r}")


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    direction: Direction

    @staticmethod
    def of(direction: str) -> "Metric":
        """The unnamed metric of ``direction`` (ValueError for anything but "max"/"min")."""
        check_direction(direction)
        return _unnamed(direction)

    @property
    def is_max(self) -> bool:
        return self.direction == "max"

    @property
    def word(self) -> str:
        """``higher`` or ``lower``, as in "higher is better"."""
        return "higher" if self.is_max else "lower"

    @property
    def sign(self) -> str:
        """``>`` or ``<``: what a score must be to the baseline's to beat it."""
        return ">" if self.is_max else "<"

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` is strictly better than ``b``."""
        return a > b if self.is_max else a < b

    def order(self, score: float) -> float:
        """A sort key: ascending order puts the better scores first."""
        return -score if self.is_max else score

    def best(self, scores: Iterable[float | None]) -> float | None:
        """The best of ``scores``; ``None`` and NaN are skipped, ``None`` if nothing is left."""
        vals = _numbers(scores)
        return None if not vals else max(vals) if self.is_max else min(vals)

    def worst(self, scores: Iterable[float | None]) -> float | None:
        """The worst of ``scores``; ``None`` and NaN are skipped, ``None`` if nothing is left."""
        vals = _numbers(scores)
        return None if not vals else min(vals) if self.is_max else max(vals)


@lru_cache(maxsize=None)
def _unnamed(direction: Direction) -> Metric:
    return Metric(direction=direction)


def _numbers(scores: Iterable[float | None]) -> list[float]:
    return [float(v) for v in scores if v is not None and not math.isnan(v)]
