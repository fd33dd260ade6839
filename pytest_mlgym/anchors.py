"""The normalised score: one scale for every task, from two anchors the task declares.

A task's size declares, beside its ``baseline``, a ``reference`` (the shipped reference solution's
score at that size, a known optimum or the published best; ``dev_reference`` on the dev split). The
normalised score of a raw score ``s`` is then 0 at the baseline and 1 at the reference, higher is
better whatever the metric's direction (RE-Bench's normalisation):

* ``linear`` (the default): ``(s - b) / (r - b)``;
* ``log`` (a task with a known ``optimum`` o, AIRS-bench style): the log of how much closer to the
  optimum ``s`` is than the baseline, over the same for the reference,
  ``log(|o - b| / |o - s|) / log(|o - b| / |o - r|)``; a score at or beyond the optimum counts as
  ``FLOOR`` of the baseline's distance from it, so the value stays finite.

The anchors are validated when a task loads (the reference strictly better than the baseline; for
``log`` the optimum strictly better than the reference), so the scale is never zero. A size that
declares no reference has no normalised score (``None``): its runs are left out of the aggregate
statistics and its Gym reward is 0 (``MLGymEnv`` warns). Raw scores that are ``None``, NaN or
infinite have none either; no anchors and no score give inf or NaN.
"""
from __future__ import annotations

import math
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .metric import Direction, Metric

Form = Literal["linear", "log"]
FORMS: tuple[str, ...] = get_args(Form)
FLOOR = 1e-6  # log form: the smallest distance to the optimum, as a fraction of the baseline's


class Anchors(BaseModel):
    """0 = ``baseline``, 1 = ``reference``; ``form`` and ``optimum`` as in the module's text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    direction: Direction
    baseline: float
    reference: float
    form: Form = "linear"
    optimum: float | None = None

    @model_validator(mode="after")
    def _scale(self):
        m = Metric.of(self.direction)
        values = [self.baseline, self.reference] + ([self.optimum] if self.optimum is not None else [])
        if not all(math.isfinite(v) for v in values):
            raise ValueError("the anchors must be finite numbers")
        if not m.better(self.reference, self.baseline):
            raise ValueError(f"the reference {self.reference:g} must be {m.word} than the baseline "
                             f"{self.baseline:g} ({m.word} is better)")
        if self.form == "log":
            if self.optimum is None:
                raise ValueError("the log form needs the metric's known optimum (optimum: ...)")
            if not m.better(self.optimum, self.reference):
                raise ValueError(f"the optimum {self.optimum:g} must be {m.word} than the reference "
                                 f"{self.reference:g} (the log form's 1 is short of the optimum)")
        elif self.optimum is not None:
            raise ValueError("an optimum is used only by the log form (normalise: log)")
        return self

    def score(self, s: float | None) -> float | None:
        """The normalised score of ``s`` (None for None, NaN or infinity)."""
        if s is None or not math.isfinite(s):
            return None
        b, r = self.baseline, self.reference
        if self.form == "linear":
            return (s - b) / (r - b)
        assert self.optimum is not None  # validated
        gap_b = abs(self.optimum - b)
        gap_s = max(self._gap(s), FLOOR * gap_b)  # at or beyond the optimum: the floor
        return math.log(gap_b / gap_s) / math.log(gap_b / self._gap(r))

    def _gap(self, s: float) -> float:
        """How far ``s`` is short of the optimum (negative beyond it)."""
        assert self.optimum is not None
        return self.optimum - s if self.direction == "max" else s - self.optimum


def check_size(name: str, size, direction: str) -> None:
    """task.yaml's ``sizes.<name>`` (a ``task.SizeSpec``): a ValueError, one line, when its anchors make
    no scale on either split (checked when the task loads)."""
    if size.dev_reference is not None and size.dev_baseline is None:
        raise ValueError(f"{name}.dev_reference needs a dev_baseline (the dev split's 0)")
    if (size.normalise != "linear" or size.optimum is not None) and size.reference is None:
        raise ValueError(f"{name}.normalise/optimum need a reference (the normalised score's 1)")
    for split, base, ref in (("reference", size.baseline, size.reference),
                             ("dev_reference", size.dev_baseline, size.dev_reference)):
        if ref is None or base is None:
            continue
        try:
            Anchors(direction=direction, baseline=base, reference=ref, form=size.normalise, optimum=size.optimum)
        except ValidationError as e:
            raise ValueError(f"{name}.{split}: {e.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def make(direction: str, baseline: float | None, reference: float | None, form: str = "linear",
         optimum: float | None = None) -> Anchors | None:
    """The anchors, or None when there is no baseline or reference or they do not make a scale (a
    record from elsewhere: task.yaml's anchors are validated when the task loads)."""
    if baseline is None or reference is None:
        return None
    try:
        return Anchors(direction=direction, baseline=baseline, reference=reference, form=form, optimum=optimum)
    except ValidationError:
        return None


def normalised(direction: str, score: float | None, baseline: float | None, reference: float | None,
               form: str = "linear", optimum: float | None = None, digits: int = 6) -> float | None:
    """``score`` on the normalised scale of these anchors, rounded; None where there is none."""
    anchors = make(direction, baseline, reference, form, optimum)
    value = anchors.score(score) if anchors is not None else None
    return None if value is None else round(value, digits)
