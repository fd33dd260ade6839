"""Which run records count: the latest record per run, and the last session of a results file.

A *run* is one (task, agent, seed); a results file may hold several records of a run (re-runs in
one session, or a resumed session). Every report, the gates and ``--mlgym-resume`` select records
with these functions, so they always agree on which records a summary is made of.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .results import RunRecord


class RunKey(NamedTuple):
    task: str
    agent: str
    seed: int


def run_key(record: RunRecord) -> RunKey:
    return RunKey(record.task, record.agent, record.seed)


def latest_per_run(records: Iterable[RunRecord]) -> dict[RunKey, RunRecord]:
    """The latest record of each run (by ``finished_at``; of equal times, the later in ``records``),
    by run; the dict is in the order the runs first finished (``latest_runs`` sorts)."""
    latest: dict[RunKey, RunRecord] = {}
    for r in sorted(records, key=lambda r: r.finished_at):  # stable: file order breaks ties
        latest[run_key(r)] = r
    return latest


def latest_runs(records: Iterable[RunRecord]) -> list[RunRecord]:
    """``latest_per_run`` as a list, sorted by task, agent and seed."""
    latest = latest_per_run(records)
    return [latest[k] for k in sorted(latest)]


def sessions(records: Iterable[RunRecord]) -> list[str]:
    """The sessions of ``records``, in the order they first appear."""
    return list(dict.fromkeys(r.session for r in records))


def last_session(records: Sequence[RunRecord], exclude: str | None = None) -> str | None:
    """The session of the last record (in file order: the latest pytest run), other than
    ``exclude``; None when there is no such record."""
    return next((r.session for r in reversed(records) if r.session != exclude), None)


def in_sessions(records: Iterable[RunRecord], chosen: Iterable[str]) -> list[RunRecord]:
    """The records of the ``chosen`` sessions, in their order."""
    wanted = set(chosen)
    return [r for r in records if r.session in wanted]
