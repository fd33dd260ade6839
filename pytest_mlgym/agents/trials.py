"""The ``search`` agent's trials: what one costs, the successive-halving plans that fit the
budget left, and the table of them all that ends the research log."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..task import Knob
from .knobs import literal


@dataclass
class Trial:
    n: int
    config: dict
    rung: str  # "baseline", "rung 1", "top rung", "search"
    score: float | None = None
    seconds: float = 0.0  # training + validation
    note: str = ""  # why it has no score


@dataclass
class Plan:
    fidelities: list  # fidelity value per rung
    counts: list[int]  # configurations per rung
    seconds: float
    steps: int


@dataclass
class Cost:
    """Seconds per trial as ``a + b * fidelity``, refitted from every measured trial."""

    points: list[tuple[float, float]] = field(default_factory=list)

    def __call__(self, fidelity: float | None) -> float:
        if not self.points:
            return 0.0
        if fidelity is None:
            return max(s for _, s in self.points)
        fs = [f for f, _ in self.points]
        if len(set(fs)) < 2:  # one fidelity measured: assume 15% fixed overhead, the rest linear
            f0, s0 = self.points[0]
            return 0.15 * s0 + 0.85 * s0 * fidelity / f0
        mf, ms = sum(fs) / len(fs), sum(s for _, s in self.points) / len(fs)
        b = sum((f - mf) * (s - ms) for f, s in self.points) / max(1e-9, sum((f - mf) ** 2 for f in fs))
        b = max(b, 0.0)
        return max(ms - b * mf, 0.0) + b * fidelity


def replan(fids: list, counts: list[int], available: int, *, eta: int, control: bool,
           trial_s: Callable[[Any], float], steps_per_edit: int, seconds_left: Callable[[], float],
           steps_left: Callable[[], int]) -> Plan | None:
    """The largest plan no wider than ``counts`` (and ``available`` configurations) that fits what is
    left; rungs below the top are dropped when a single configuration would reach them. ``trial_s``:
    the seconds one trial (training and validation) costs at a fidelity."""
    for n in range(min(counts[0], available), 0, -1):
        cs = [max(1, min(c, math.ceil(n / eta ** j))) for j, c in enumerate(counts)]
        fs = list(fids)
        while len(cs) > 1 and cs[-2] == 1:  # one configuration left: straight to the top
            cs.pop(-2)
            fs.pop(-2)
        extra = 1 if control and len(cs) > 1 else 0  # the shipped configuration at the top, as a control
        seconds = sum(c * trial_s(f) for c, f in zip(cs, fs))
        seconds += extra * trial_s(fs[-1])
        steps = (sum(cs) + extra) * (steps_per_edit + 2) + cs[-1] + extra + 1  # + backups
        if seconds <= seconds_left() and steps <= steps_left():
            return Plan(fs, cs, seconds, steps)
    return None


def describe(plan: Plan, name: str, show: Callable[[Any], str]) -> str:
    """The plan in words, its fidelity knob called ``name`` and its values written by ``show``."""
    return (", then ".join(f"{c} configuration{'s' * (c > 1)} at {name}={show(f)}"
                           for c, f in zip(plan.counts, plan.fidelities))
            + f" (about {plan.seconds:.0f} s and {plan.steps} steps)")


def table(trials: list[Trial], knobs: list[Knob], metric: str, best: Trial | None) -> str:
    """Every trial as a row of a Markdown table; ``best`` is marked as submitted."""
    rows = [f"| trial | stage | {' | '.join(k.name for k in knobs)} | {metric} | s |",
            "|" + "---|" * (len(knobs) + 4)]
    for t in trials:
        mark = " (submitted)" if t is best else ""
        score = f"{t.score:.6g}" if t.score is not None else (t.note or "-")
        rows.append(f"| {t.n}{mark} | {t.rung} | "
                    + " | ".join(literal(k, t.config.get(k.name)) for k in knobs)
                    + f" | {score} | {t.seconds:.0f} |")
    return "\n".join(rows)
