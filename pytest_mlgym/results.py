"""Run records and the append-only results store (``reports/results.jsonl``).

One JSON line per (task, agent, seed) run. AUP and every report are computed from these
records only, so any set of past runs can be re-scored and compared. Appends are whole lines,
flushed and fsynced under a file lock shared by all xdist workers; a torn last line (a crash
mid-write) is skipped with a warning when reading.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import warnings
from pathlib import Path
from typing import Literal, get_args

from filelock import FileLock
from pydantic import BaseModel, Field

from .anchors import Form, normalised
from .compute import Compute
from .metric import Direction, Metric

# how an episode ended (``running`` only while it runs)
Status = Literal["running", "submitted", "invalid", "step_limit", "time_limit", "cost_limit", "error", "infra_error"]
STATUSES: tuple[str, ...] = get_args(Status)
# sealed (the default): validate shows the dev split; test scores are recorded and shown to no one
# in the episode; best attempt = the test score of the attempt with the best dev score.
# mlgym: MLGym's own protocol (validate shows the test score; best attempt = the best test score,
# selected on test feedback), for comparison with published numbers.
Protocol = Literal["sealed", "mlgym"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
EventKind = Literal["validate", "submit", "autosubmit"]  # what scored an artefact
# a run's three scores, all on the test split: best attempt (the attempt with the best dev score;
# mlgym: the best test score), best submission (the final artefact's), oracle best attempt (the best
# test score, selected on test feedback: MLGym's "best attempt", reported, labelled, never gated on)
ScoreKind = Literal["best_attempt", "best_submission", "oracle_best_attempt"]
SCORE_KINDS: tuple[ScoreKind, ...] = get_args(ScoreKind)
GATED_KINDS: tuple[ScoreKind, ...] = ("best_attempt", "best_submission")


class Score(BaseModel):
    step: int
    kind: EventKind
    score: float | None  # the test split's
    metrics: dict = {}
    reason: str = ""
    t: float = 0.0
    dev_score: float | None = None  # the dev split's (what the agent saw under the sealed protocol)
    dev_metrics: dict = {}


class RunRecord(BaseModel):
    session: str
    task: str
    size: str
    agent: str
    policy: str
    seed: int
    metric: str
    direction: Direction
    baseline: float
    tolerance: float
    scores: list[Score] = []
    # all three on the test split: the final artefact's; the attempt with the best dev score's (the
    # best test score under protocol mlgym); the best test score (selected on test feedback: MLGym's
    # "best attempt", shown labelled as such)
    best_attempt: float | None = None
    best_submission: float | None = None
    oracle_best_attempt: float | None = None
    # the normalised score's anchors on the test split (pytest_mlgym.anchors: 0 = baseline, 1 = reference;
    # None: the size declares no reference) and the run's two gated scores on that scale
    reference: float | None = None
    normalise: Form = "linear"
    optimum: float | None = None
    normalised_best_submission: float | None = None
    normalised_best_attempt: float | None = None
    protocol: Protocol = "sealed"
    published: bool = False  # the size's baseline is a published figure: the run is not judged
    status: Status
    reason: str = ""
    infra: str | None = None  # infra_error: the failing part's error class (e.g. RateLimitError), never the agent's
    steps: int = 0
    wall_s: float = 0.0
    cost_usd: float = 0.0
    tokens: int = 0
    usage: list[dict] = []  # per model call: step, tokens, cost_usd, latency_s
    trajectory: str | None = None  # the saved trajectory, relative to the report folder
    sandbox: str = "local"
    isolation: str | None = None
    sandbox_host: str | None = None  # the Docker Engine that ran it (--sandbox docker)
    compute: Compute = Compute()  # the machine that ran the sandbox and what it used (compute.py)
    passed: bool = False
    verdict: str = ""
    versions: dict = Field(default_factory=lambda: versions())
    finished_at: float = 0.0

    def normalised(self, score: float | None) -> float | None:
        """``score`` (a test score of this run's task and size) on the normalised scale of its anchors."""
        return normalised(self.direction, score, self.baseline, self.reference, self.normalise, self.optimum)

    def __repr__(self) -> str:  # short, for pytest's assertion messages
        return (f"<run {self.task}/{self.agent}/s{self.seed}: {self.status}, "
                f"best submission {self.metric}={self.best_submission}>")


def versions() -> dict:
    from . import __version__
    return {"pytest_mlgym": __version__, "python": platform.python_version(), "platform": sys.platform}


class InfraFailure(Exception):
    """What a test whose episode ended in ``infra_error`` reports (the plugin makes the test an error)."""


def infra_message(rec: RunRecord) -> str:
    """The one line that reports a run the infrastructure cut short (status ``infra_error``)."""
    cls = rec.infra or "unknown"
    detail = rec.reason.removeprefix(f"{cls}: ") if rec.infra else rec.reason
    return (f"infrastructure failure ({cls}): {rec.task}/{rec.agent}/s{rec.seed}: {detail}; recorded as "
            f"infra_error, not the agent's failure: left out of AUP, --mlgym-resume runs it again")


def judge(rec: RunRecord) -> tuple[bool, str]:
    """Did the run pass? The baseline policy must reproduce the recorded baseline within the task's
    tolerance; every other agent must beat it with its best (last scored) submission by more than
    that tolerance, the baseline's own noise (its spread over seeds and CPUs, ``measure --seeds``):
    a score the baseline itself reaches on some seed or machine is no improvement. A run the
    infrastructure cut short (``infra_error``) never passes, whatever it scored before."""
    m, base, sub = rec.metric, rec.baseline, rec.best_submission
    if rec.status == "infra_error":
        return False, infra_message(rec)
    if rec.published:
        return False, (f"{rec.task}: not judged: the {rec.size} baseline {base:g} is a published figure that "
                       f"the shipped baseline and evaluator were not measured to produce here ({m} = {sub})")
    if sub is None:
        why = rec.reason or rec.status
        return False, f"{rec.task}: no valid submission ({rec.status}: {why})"
    if rec.policy == "baseline":
        ok = abs(sub - base) <= rec.tolerance
        return ok, (f"{rec.task}: baseline {'reproduced' if ok else 'NOT reproduced'}: {m} = {sub:.6g} vs "
                    f"recorded {base:g} ± {rec.tolerance:g}")
    metric = Metric.of(rec.direction)
    bar = base + rec.tolerance if metric.is_max else base - rec.tolerance
    better = metric.better(sub, bar)
    noise = f" by more than its noise ± {rec.tolerance:g} (to {bar:.6g})" if rec.tolerance else ""
    return better, (f"{rec.task}: {rec.agent} {'beats' if better else 'does not beat'} the baseline{noise}: "
                    f"{m} = {sub:.6g} vs {base:g} ({metric.word} is better)")


class ResultsStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = FileLock(str(self.path) + ".lock")

    def append(self, record: RunRecord) -> None:
        line = record.model_dump_json() + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            self._heal()
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())

    def _heal(self) -> None:
        """If a crash left a partial last line, end it so the next record starts on its own line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")

    def read(self, session: str | None = None) -> list[RunRecord]:
        """Every valid record (of one session, if given); torn or foreign lines are skipped with a warning."""
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = RunRecord.model_validate(json.loads(line))
                except (ValueError, TypeError):
                    warnings.warn(f"{self.path}:{n}: skipping a torn or malformed record", stacklevel=2)
                    continue
                if session is None or rec.session == session:
                    out.append(rec)
        return out
