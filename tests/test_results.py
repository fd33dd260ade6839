"""The results store: whole-line appends under a lock, torn lines skipped, verdicts."""
from __future__ import annotations

import multiprocessing
import warnings

import pytest

from pytest_mlgym.results import ResultsStore, RunRecord, judge


def rec(**kw) -> RunRecord:
    base = dict(session="s1", task="tiny", size="lite", agent="a", policy="replay", seed=0, metric="score",
                direction="max", baseline=6.0, tolerance=0.0, status="submitted", best_submission=7.0)
    return RunRecord(**{**base, **kw})


def _writer(path, worker):
    store = ResultsStore(path)
    for i in range(50):
        store.append(rec(seed=i, agent=f"w{worker}", reason="x" * 5000))


def test_parallel_appends_from_processes_never_interleave(tmp_path):
    path = tmp_path / "results.jsonl"
    procs = [multiprocessing.Process(target=_writer, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = ResultsStore(path).read()
    assert len(records) == 200 and len({(r.agent, r.seed) for r in records}) == 200


def test_a_torn_last_line_is_skipped_with_a_warning_and_healed(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(rec(seed=0))
    with open(store.path, "a") as f:
        f.write('{"session": "s1", "task": "ti')  # a crash mid-write
    with pytest.warns(UserWarning, match="results.jsonl:2: skipping a torn"):
        assert [r.seed for r in store.read()] == [0]
    store.append(rec(seed=1))  # the next append starts on its own line
    with pytest.warns(UserWarning):
        assert [r.seed for r in store.read()] == [0, 1]


def test_read_filters_by_session(tmp_path):
    store = ResultsStore(tmp_path / "r.jsonl")
    store.append(rec(session="a"))
    store.append(rec(session="b", seed=1))
    assert [r.session for r in store.read("b")] == ["b"] and len(store.read()) == 2


@pytest.mark.parametrize("kw, passed, words", [
    (dict(best_submission=7.0), True, "beats the baseline"),
    (dict(best_submission=6.0), False, "does not beat"),
    (dict(best_submission=5.0, direction="min"), True, "beats the baseline"),
    (dict(best_submission=None, status="invalid", reason="bad csv"), False, "no valid submission (invalid: bad csv)"),
    (dict(policy="baseline", best_submission=6.001, tolerance=0.002), True, "baseline reproduced"),
    (dict(policy="baseline", best_submission=6.01, tolerance=0.002), False, "NOT reproduced"),
])
def test_judge(kw, passed, words):
    ok, verdict = judge(rec(**kw))
    assert ok is passed and words in verdict
