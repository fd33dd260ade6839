"""An episode's state and its score bookkeeping: every score taken, the best feedback so far and
the three score kinds the harness records (best submission, best attempt, oracle best attempt)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Literal

from ..evaluation import Evaluation
from ..results import EventKind, Status
from ..task import Metric
from .trajectory import Trajectory


@dataclass
class ScoreEvent:
    step: int
    kind: EventKind
    score: float | None  # the test split's (sealed: never shown during the episode)
    metrics: dict
    reason: str
    t: float  # seconds since the episode started
    dev_score: float | None = None  # the dev split's (what validate shows under the sealed protocol)
    dev_metrics: dict = field(default_factory=dict)

    @classmethod
    def of(cls, step: int, kind: EventKind, ev: Evaluation, t: float) -> "ScoreEvent":
        return cls(step, kind, ev.score, ev.metrics, ev.reason, round(t, 3), ev.dev_score, ev.dev_metrics)


@dataclass
class EpisodeState:
    started: float = field(default_factory=time.monotonic)
    step: int = 0
    status: Status | Literal["closed"] = "running"  # closed: before the first reset
    reason: str = ""
    scores: list[ScoreEvent] = field(default_factory=list)
    best_normalised: float = 0.0  # the best normalised shown score so far, at least 0 (the baseline)
    unrewarded: bool = False  # a score beat the baseline but the size has no anchor to reward it on (warned)
    trajectory: Trajectory = field(default_factory=Trajectory)

    @property
    def done(self) -> bool:
        return self.status != "running"

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def feedback(self, shown: Callable[[ScoreEvent], float | None]) -> list[dict]:
        """Every score as the agent may see it: ``shown(event)`` is the split its protocol shows."""
        return [{"step": e.step, "kind": e.kind, "score": shown(e) if e.score is not None else None,
                 "reason": e.reason} for e in self.scores]

    def results(self, metric: Metric, protocol: str) -> dict:
        """The three score kinds of the episode so far, all on the test split (harness-side only):
        best submission (the final scored artefact), best attempt (sealed: the attempt with the best
        dev score; mlgym: the best test score) and the oracle best attempt (the best test score:
        selected on test feedback, MLGym's "best attempt")."""
        m = metric
        valid = [e for e in self.scores if e.score is not None]
        final = self.scores[-1] if self.scores and self.scores[-1].kind != "validate" else None
        oracle = m.best([e.score for e in valid])
        if protocol == "mlgym":
            attempt = oracle
        else:
            with_dev = [e for e in valid if e.dev_score is not None]
            if with_dev:  # the best dev score; of equals, the latest
                best_dev = m.best([e.dev_score for e in with_dev])
                attempt = [e for e in with_dev if e.dev_score == best_dev][-1].score
            else:  # no feedback to select on: the final artefact (else the last valid one)
                attempt = final.score if final and final.score is not None else (valid[-1].score if valid else None)
        return {"best_attempt": attempt, "best_submission": final.score if final else None,
                "oracle_best_attempt": oracle, "scores": list(self.scores)}
