"""Which records count (pytest_mlgym.selection): the latest per run and the last session, as the
summary, report.html, the gates and --mlgym-resume all select them."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from pytest_mlgym import selection
from pytest_mlgym.report import gates, html, summary
from pytest_mlgym.results import PROTOCOLS, SCORE_KINDS, STATUSES, ResultsStore, RunRecord, Score


def rec(session="s1", seed=0, sub=7.0, t=1.0, **kw) -> RunRecord:
    return RunRecord(**{**dict(session=session, task="tiny", size="lite", agent="a", policy="replay", seed=seed,
                               metric="score", direction="max", baseline=6.0, tolerance=0.0, status="submitted",
                               best_attempt=sub, best_submission=sub, finished_at=t), **kw})


def test_latest_per_run_is_by_finish_time_then_file_order():
    records = [rec(sub=1.0, t=5.0), rec(sub=2.0, t=3.0), rec(seed=1, sub=3.0, t=2.0), rec(seed=1, sub=4.0, t=2.0)]
    latest = selection.latest_per_run(records)
    assert {k: r.best_submission for k, r in latest.items()} == {("tiny", "a", 0): 1.0, ("tiny", "a", 1): 4.0}
    assert list(latest) == [("tiny", "a", 1), ("tiny", "a", 0)]  # the order they first finished
    assert [r.seed for r in selection.latest_runs(records)] == [0, 1]  # sorted by task, agent, seed


def test_last_session_is_the_session_of_the_last_record():
    records = [rec("old"), rec("new"), rec("old", seed=1)]
    assert selection.sessions(records) == ["old", "new"]
    assert selection.last_session(records) == "old"
    assert selection.last_session(records, exclude="old") == "new"
    assert selection.last_session([]) is None and selection.last_session([rec("x")], exclude="x") is None
    assert [r.session for r in selection.in_sessions(records, ["old"])] == ["old", "old"]


def test_the_summary_report_and_gates_select_alike(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    for r in [rec("old", sub=9.0), rec("new", sub=1.0, t=1.0), rec("new", sub=8.0, t=2.0), rec("new", seed=1, sub=6.5)]:
        store.append(r)
    stored, old = gates.stored_run(store.path, exclude_session="other")
    assert stored == "new" and len(old) == 3
    s = summary.build(old)
    row = s.tasks["tiny"].agents["a"]
    assert row.runs == 2 and row.best_submission == 8.0
    assert gates.compare(old, old)["rows"][0]["new"] == 8.0
    page = html.main(store.path, tmp_path / "report.html").read_text()
    assert page.count("<details class='run") == 2 and "session new" in page


def test_statuses_kinds_and_protocols_are_closed_sets():
    assert "cost_limit" in STATUSES and PROTOCOLS == ("sealed", "mlgym") and SCORE_KINDS == summary.KINDS
    for bad in (dict(status="gave_up"), dict(protocol="other"), dict(direction="up"),
                dict(scores=[Score(step=1, kind="submit", score=1.0).model_dump() | {"kind": "peek"}])):
        with pytest.raises(ValidationError):
            rec(**bad)
