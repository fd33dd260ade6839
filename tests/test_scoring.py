"""Tests for pytest_mlgym.scoring: the published MLGym-Bench AUP table, properties, edge cases."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_mlgym.scoring import (
    DEFAULT_TAU_MAX,
    aup,
    best_of_k,
    performance_ratios,
    profile,
    tau_max_for,
)

# ---------------------------------------------------------------- the published table
from pytest_mlgym.published import AUP as PUBLISHED, BASELINES as BASES, DIRECTIONS as DIRS, MODELS, SCORES  # noqa: E402


def test_published_best_attempt_table_reproduced():
    got = aup(SCORES, DIRS, BASES, tau_max=1.2, points=500)
    assert set(got) == set(PUBLISHED)
    for method, want in PUBLISHED.items():
        assert round(got[method], 3) == want, (method, got[method])


def test_published_tau_max_and_default_tau_max():
    assert tau_max_for(SCORES, directions=DIRS, baselines=BASES) == 1.2
    assert aup(SCORES, DIRS, BASES) == aup(SCORES, DIRS, BASES, tau_max=1.2)


def test_published_ratios_spot_checks():
    tasks, methods, r = performance_ratios(SCORES, DIRS, BASES)
    assert methods == MODELS + ["baseline"]
    row = dict(zip(methods, r[tasks.index("FineWeb val loss")]))
    r_worst = 4.673 / 3.966  # the baseline is the worst feasible loss
    assert row["o1-preview"] == 1.0
    assert row["Llama-3.1-405B"] == pytest.approx(1.05 * r_worst)  # no score
    row = dict(zip(methods, r[tasks.index("Blotto")]))
    assert row["baseline"] == pytest.approx(1.05 * 0.576 / 0.043)  # negative baseline
    row = dict(zip(methods, r[tasks.index("Breakout")]))
    assert row["GPT-4o"] == row["Claude-3.5-Sonnet"] == pytest.approx(1.05 * 71.389 / 48.817)


# ---------------------------------------------------------------- properties
names = st.text("abcdefgh", min_size=1, max_size=4)
pos = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)
anything = st.one_of(st.none(), pos, st.just(0.0), st.just(float("nan")),
                     st.floats(-1e3, -1e-3), st.just(float("inf")))


@st.composite
def problems(draw, score=st.one_of(st.none(), pos), base=pos, min_tasks=1):
    tasks = draw(st.lists(names, min_size=min_tasks, max_size=6, unique=True))
    methods = draw(st.lists(names.map(str.upper), min_size=1, max_size=4, unique=True))
    scores = {t: {m: draw(score) for m in methods} for t in tasks}
    dirs = {t: draw(st.sampled_from(["max", "min"])) for t in tasks}
    bases = {t: draw(base) for t in tasks}
    return scores, dirs, bases


@settings(max_examples=150, deadline=None)
@given(problems(score=anything, base=st.one_of(pos, st.floats(-5, -0.1))), st.randoms())
def test_task_and_method_order_do_not_matter(problem, rnd):
    scores, dirs, bases = problem
    tasks = list(scores)
    rnd.shuffle(tasks)
    shuffled = {}
    for t in tasks:
        items = list(scores[t].items())
        rnd.shuffle(items)
        shuffled[t] = dict(items)
    assert aup(shuffled, dirs, bases) == aup(scores, dirs, bases)


@settings(max_examples=150, deadline=None)
@given(problems(score=anything, base=st.one_of(pos, st.floats(-5, -0.1), st.none()), min_tasks=0),
       st.one_of(st.none(), st.floats(0.05, 3)), st.integers(2, 50))
def test_every_aup_within_zero_and_tau_max(problem, tau_max, points):
    scores, dirs, bases = problem
    tm = tau_max_for(scores, directions=dirs, baselines=bases) if tau_max is None else tau_max
    got = aup(scores, dirs, bases, tau_max=tau_max, points=points)
    assert all(0.0 <= v <= tm + 1e-12 for v in got.values())
    tau, rho = profile(scores, dirs, bases, tau_max=tau_max, points=points)
    assert tau[0] == 0 and tau[-1] == pytest.approx(tm) and len(tau) == points
    for p in rho.values():
        assert np.all(np.diff(p) >= 0) and np.all((p >= 0) & (p <= 1))


@settings(max_examples=150, deadline=None)
@given(problems(), st.data())
def test_dominating_method_never_scores_lower(problem, data):
    scores, dirs, bases = problem
    for t in scores:  # GOOD is at least as good as BAD on every task (None counts as worst)
        a, b = data.draw(st.one_of(st.none(), pos)), data.draw(st.one_of(st.none(), pos))
        if a is None or b is None:
            good, bad = (a if a is not None else b), None
        else:
            good, bad = (max(a, b), min(a, b)) if dirs[t] == "max" else (min(a, b), max(a, b))
        scores[t]["good"], scores[t]["bad"] = good, bad
    got = aup(scores, dirs, bases)
    assert got["good"] >= got["bad"]


@settings(max_examples=150, deadline=None)
@given(problems(), st.sampled_from([None, float("nan"), -1.0, "worse", "missing"]))
def test_infeasible_everywhere_method(problem, kind):
    """An infeasible method gets 1.05 * r_worst, the largest ratio on the task: it scores no
    more than any other method, the same whatever makes it infeasible, leaves the others'
    AUP unchanged, and scores exactly 0 on tasks where nothing is feasible."""
    scores, dirs, bases = problem
    before = aup(scores, dirs, bases)
    for t in scores:
        if kind == "worse":
            scores[t]["dud"] = bases[t] * (0.5 if dirs[t] == "max" else 2.0)
        elif kind != "missing":
            scores[t]["dud"] = kind
    if kind == "missing":
        next(iter(scores.values()))["dud"] = None
    got = aup(scores, dirs, bases)
    assert {m: v for m, v in got.items() if m != "dud"} == before
    assert all(got["dud"] <= v for v in got.values())
    nothing = {t: {m: -1.0 for m in s} for t, s in scores.items()}
    assert set(aup(nothing, dirs, {t: -1.0 for t in bases}).values()) == {0.0}


@settings(max_examples=100, deadline=None)
@given(problems())
def test_best_everywhere_scores_tau_max(problem):
    scores, dirs, bases = problem
    for t in scores:
        scores[t]["top"] = 1e4 if dirs[t] == "max" else 1e-4
    got = aup(scores, dirs, bases, tau_max=1.0, points=101)
    assert got["top"] == pytest.approx(1.0)


# ---------------------------------------------------------------- edge cases
def test_task_without_feasible_method_gives_inf_and_still_counts():
    scores = {"ok": {"a": 2.0, "b": 1.0}, "dead": {"a": -1.0, "b": None}}
    dirs, bases = {"ok": "max", "dead": "max"}, {"ok": 1.0, "dead": -3.0}
    tasks, methods, r = performance_ratios(scores, dirs, bases)
    assert np.isinf(r[tasks.index("dead")]).all()
    got = aup(scores, dirs, bases, tau_max=1.0, points=11)
    assert got["a"] == pytest.approx(0.5)  # rho = 1/2: the dead task stays in the denominator


def test_zero_scores_and_zero_best():
    # max: best / 0 is infinite, so a zero score is infeasible (baseline 0 here)
    _, m, r = performance_ratios({"t": {"a": 0.5}}, {"t": "max"}, {"t": 0.0})
    assert dict(zip(m, r[0])) == {"a": 1.0, "baseline": 1.05}
    # min with best == 0: the zero score has r = 1, a positive one would be s / 0 = inf
    _, m, r = performance_ratios({"t": {"a": 0.0, "b": 2.0}}, {"t": "min"}, {"t": 3.0})
    assert dict(zip(m, r[0])) == {"a": 1.0, "b": 1.05, "baseline": 1.05}
    # everyone tied at 0: all feasible with r = 1
    _, _, r = performance_ratios({"t": {"a": 0.0}}, {"t": "max"}, {"t": 0.0})
    assert r.tolist() == [[1.0, 1.0]]


def test_overflowing_ratio_is_infeasible():
    # b's ratio 1.75e308 is finite but 1.05 * r overflows, so b (and the tied baseline) drop out
    scores, d, b = {"t": {"a": 1.75e308, "b": 1.0}}, {"t": "max"}, {"t": 1.0}
    _, m, r = performance_ratios(scores, d, b)
    assert dict(zip(m, r[0])) == {"a": 1.0, "b": 1.05, "baseline": 1.05}
    assert tau_max_for(scores, directions=d, baselines=b) == 0.4


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), -float("inf"), "missing"])
def test_no_score_variants_are_equivalent(bad):
    dirs, bases = {"t": "max", "u": "min"}, {"t": 1.0, "u": 4.0}
    ref = aup({"t": {"a": 2.0, "b": None}, "u": {"a": 1.0, "b": None}}, dirs, bases)
    if bad == "missing":  # b must exist on some task to be a method at all
        t, u = {"a": 2.0, "b": None}, {"a": 1.0}
    else:
        t, u = {"a": 2.0, "b": bad}, {"a": 1.0, "b": bad}
    assert aup({"t": t, "u": u}, dirs, bases) == ref
    assert ref["b"] < ref["baseline"] < ref["a"]


def test_worse_than_baseline_and_negative_are_infeasible():
    scores = {"t": {"a": 10.0, "worse": 4.0, "neg": -1.0}}
    _, m, r = performance_ratios(scores, {"t": "max"}, {"t": 5.0})
    assert dict(zip(m, r[0])) == pytest.approx(
        {"a": 1.0, "worse": 2.1, "neg": 2.1, "baseline": 2.0})
    _, m, r = performance_ratios({"t": {"a": 6.0}}, {"t": "min"}, {"t": 5.0})
    assert dict(zip(m, r[0])) == {"a": 1.05, "baseline": 1.0}


@pytest.mark.parametrize("base", [None, float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("direction", ["max", "min"])
def test_baseline_without_score_has_no_threshold(base, direction):
    scores = {"t": {"a": 1.0, "b": 4.0}}
    _, m, r = performance_ratios(scores, {"t": direction}, {"t": base})
    assert dict(zip(m, r[0])) == {"a": 4.0 if direction == "max" else 1.0,
                                  "b": 1.0 if direction == "max" else 4.0, "baseline": 4.2}


def test_empty_and_single_method():
    assert aup({}, {}, {}) == {"baseline": 0.0}
    got = aup({"t": {}}, {"t": "max"}, {"t": 1.0}, tau_max=1.0, points=3)
    assert got == {"baseline": 1.0}


def test_tau_max_for_rounding_multiple_sets_and_default():
    d, b = {"t": "max"}, {"t": 1.0}
    # 1.05 * 5.4 / 1.89 is 3.0000000000000004 in floats: ceil must give 3, log10(3) -> 0.5
    assert tau_max_for({"t": {"a": 5.4}}, directions=d, baselines={"t": 1.89}) == 0.5
    assert tau_max_for({"t": {"a": 10.0}}, directions=d, baselines=b) == 1.1  # ceil(10.5) = 11
    assert tau_max_for({"t": {"a": 9.0}}, directions=d, baselines=b) == 1.0  # log10(10) exactly
    sets = [{"t": {"a": 2.0}}, {"t": {"a": 9.0}}]
    assert tau_max_for(*sets, directions=d, baselines=b) == 1.0
    assert tau_max_for({"t": {"a": -1.0}}, directions=d, baselines={"t": -1.0}) == DEFAULT_TAU_MAX
    assert tau_max_for(directions=d, baselines=b) == DEFAULT_TAU_MAX == 0.4


def test_best_of_k():
    assert best_of_k([1.0, None, 3.0, 2.0], "max") == 3.0
    assert best_of_k([1.0, None, 3.0, float("nan")], "min") == 1.0
    assert best_of_k([None, float("nan")], "max") is None
    assert best_of_k([], "min") is None


@pytest.mark.parametrize("call, match", [
    (lambda: aup({"t": {"baseline": 1.0}}, {"t": "max"}, {"t": 1.0}), "already named"),
    (lambda: aup({"t": {"a": 1.0}}, {}, {"t": 1.0}), "lacks"),
    (lambda: aup({"t": {"a": 1.0}}, {"t": "max"}, {}), "lacks"),
    (lambda: aup({"t": {"a": 1.0}}, {"t": "maximize"}, {"t": 1.0}), "direction"),
    (lambda: tau_max_for({"t": {"a": 1.0}}, directions={"t": "up"}, baselines={"t": 1}),
     "direction"),
    (lambda: aup({"t": {"a": 1.0}}, {"t": "max"}, {"t": 1.0}, tau_max=0.0), "tau_max"),
    (lambda: aup({"t": {"a": 1.0}}, {"t": "max"}, {"t": 1.0}, points=1), "points"),
    (lambda: best_of_k([1.0], "up"), "direction"),
])
def test_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_custom_baseline_name_allows_a_method_called_baseline():
    got = aup({"t": {"baseline": 2.0}}, {"t": "max"}, {"t": 1.0}, baseline_name="ref")
    assert set(got) == {"baseline", "ref"}


def test_thousand_tasks_hundred_methods_is_fast():
    rng = np.random.default_rng(0)
    tasks = [f"t{i}" for i in range(1000)]
    scores = {t: {f"m{j}": (None if rng.random() < 0.1 else float(rng.lognormal()))
                  for j in range(100)} for t in tasks}
    dirs = {t: ("max" if i % 2 else "min") for i, t in enumerate(tasks)}
    bases = {t: float(rng.lognormal()) for t in tasks}
    start = time.perf_counter()
    got = aup(scores, dirs, bases)
    assert time.perf_counter() - start < 1.0
    assert len(got) == 101 and all(math.isfinite(v) for v in got.values())
