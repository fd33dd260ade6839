"""Issue 18: paired comparisons with intervals (pytest_mlgym/paired.py) and the noise-aware gates
(--mlgym-confidence, pytest_mlgym/report/noise.py): the statistics, simulated gate decisions with a
known true difference (seeded), and the options through real inner pytest runs."""
from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from test_gates import gate_lines, oracle, rec

from pytest_mlgym import paired, scoring
from pytest_mlgym.report import gates, noise
from pytest_mlgym.results import ResultsStore

KINDS = ("best_attempt", "best_submission")
TASKS = {"t1": ("max", 1.0, 1.2), "t2": ("min", 2.0, 1.6), "t3": ("max", 0.5, 0.6), "t4": ("max", 3.0, 3.3)}
DIRS = {t: d for t, (d, _, _) in TASKS.items()}
BASE = {t: b for t, (_, b, _) in TASKS.items()}
SD = 0.1


def simulated(rng, shift: float, seeds: int = 5) -> dict:
    """One agent's runs: per task a normal score around its mean, moved by ``shift`` towards better."""
    return {kind: {t: {s: float(mu + (shift if d == "max" else -shift) + rng.normal(0, SD)) for s in range(seeds)}
                   for t, (d, _, mu) in TASKS.items()} for kind in KINDS}


def decision(old, new, limit: float, confidence: float = 0.95, seed: int = 0) -> tuple[gates.Gate, paired.Paired]:
    """The noise-aware --mlgym-max-regression on one simulated comparison, and the comparison."""
    p = paired.compare(old, new, DIRS, BASE, tau_max=0.4, confidence=confidence, n_boot=1000, seed=seed)
    comparison = {"agents": ["x"], "tasks": sorted(TASKS), "tau_max": 0.4, "intervals": {"x": p.model_dump()}}
    return noise.max_regression(comparison, limit, "old.jsonl", confidence), p


# -- the statistics --------------------------------------------------------------------------------
def test_point_estimates_are_the_published_aup_in_one_profile_as_compare_gives_them():
    old = [rec(seed=s, sub=10.0 - s, best_attempt=10.0) for s in range(3)] + [rec(task="t2", seed=s, sub=5.0 + s)
                                                                              for s in range(3)]
    new = [rec(session="now", seed=s, sub=9.0 - s) for s in range(3)] + [rec(session="now", task="t2", seed=s, sub=6.0)
                                                                         for s in range(3)]
    c = gates.compare(old, new)
    p = c["intervals"]["oracle"]
    for kind in KINDS:
        best = {t: {"old": max(getattr(r, kind) for r in old if r.task == t),
                    "new": max(getattr(r, kind) for r in new if r.task == t)} for t in ("t2", "tiny")}
        v = scoring.aup(best, {"t2": "max", "tiny": "max"}, {"t2": 6.0, "tiny": 6.0}, tau_max=c["tau_max"],
                        baseline_name="(recorded baseline)")
        assert (p["aup"][kind]["a"], p["aup"][kind]["b"]) == (v["old"], v["new"])
        assert p["aup"][kind]["change"]["estimate"] == c["aup"]["oracle"][kind]["change"]
        ch = p["aup"][kind]["change"]
        assert ch["low"] <= ch["lower"] <= ch["upper"] <= ch["high"]
    assert p["seeds"] == {"a": 3, "b": 3, "paired": 3}
    # per task, the change of the mean (positive = better): tiny 9,8,7 vs 10,9,8; t2 6 vs 5,6,7
    assert p["tasks"]["tiny"]["estimate"] == pytest.approx(-1.0) and p["tasks"]["t2"]["estimate"] == pytest.approx(0.0)


def test_probability_of_improvement_is_rliables_mann_whitney_per_task_direction_aware():
    a = {k: {"up": {0: 1.0, 1: 2.0, 2: 3.0}, "down": {0: 5.0, 1: 4.0, 2: None}} for k in KINDS}
    b = {k: {"up": {0: 2.0, 1: 2.0, 2: 4.0}, "down": {0: 3.0, 1: 6.0, 2: 4.0}} for k in KINDS}
    dirs, base = {"up": "max", "down": "min"}, {"up": 0.0, "down": 10.0}
    p = paired.compare(a, b, dirs, base, tau_max=0.4, n_boot=200)

    def count(x, y):  # P(y beats x), a tie 1/2, no score the worst
        return np.mean([(yy > xx) + 0.5 * (yy == xx) for xx in x for yy in y])
    inf = math.inf
    up = count([1, 2, 3], [2, 2, 4])
    down = count([-5, -4, -inf], [-3, -6, -4])  # "min": the lower score is the better
    assert p.poi.estimate == pytest.approx((up + down) / 2)
    assert 0 <= p.poi.lower <= p.poi.estimate <= p.poi.upper <= 1


def test_the_bootstrap_is_paired_same_scores_give_a_zero_width_interval_and_is_seeded():
    rng = np.random.default_rng(3)
    a = simulated(rng, 0.0)
    p = paired.compare(a, a, DIRS, BASE, tau_max=0.4)
    c = p.aup["best_submission"].change
    assert (c.estimate, c.low, c.high, c.lower, c.upper) == (0, 0, 0, 0, 0)  # unpaired resampling would spread
    assert p.poi.estimate == 0.5 and all(t.low == t.high == 0 for t in p.tasks.values())
    b = simulated(rng, 0.0)
    one, two = (paired.compare(a, b, DIRS, BASE, tau_max=0.4, seed=7) for _ in range(2))
    assert one == two and one != paired.compare(a, b, DIRS, BASE, tau_max=0.4, seed=8)
    assert one.aup["best_submission"].change.high > one.aup["best_submission"].change.low


def test_fewer_than_two_seeds_on_a_side_give_no_interval():
    rng = np.random.default_rng(4)
    p = paired.compare(simulated(rng, 0.0, seeds=1), simulated(rng, 0.0, seeds=5), DIRS, BASE, tau_max=0.4)
    assert p.seeds == {"a": 1, "b": 5, "paired": 1}
    assert p.aup["best_submission"].change.upper is None and p.poi.low is None


# -- simulated gate decisions (the "Done when") -------------------------------------------
def test_with_no_true_difference_the_gate_false_alarms_at_most_one_minus_c():
    rng = np.random.default_rng(2026)
    runs = 300
    failed = sum(not decision(simulated(rng, 0.0), simulated(rng, 0.0), 0.0, seed=i)[0].passed for i in range(runs))
    assert failed / runs <= 1 - 0.95  # D = 0, the strictest: any confident drop fails


def test_with_a_real_regression_beyond_the_limit_the_gate_fires():
    rng = np.random.default_rng(7)
    runs, limit = 100, 0.02
    drops, fired = [], 0
    for i in range(runs):
        old, new = simulated(rng, 0.0), simulated(rng, -3 * SD)
        gate, p = decision(old, new, limit, seed=i)
        fired += not gate.passed
        drops.append(p.aup["best_submission"].change.estimate)
    assert -np.mean(drops) > 3 * limit  # the regression is clearly larger than D
    assert fired / runs >= 0.9


def test_a_straddling_interval_passes_and_says_how_many_seeds_would_decide():
    rng = np.random.default_rng(11)
    old, new = simulated(rng, 0.0, seeds=3), simulated(rng, -0.5 * SD, seeds=3)
    gate, p = decision(old, new, 0.0)
    c = p.aup["best_submission"].change
    assert c.lower < 0 < c.upper  # the data cannot decide
    n = paired.seeds_needed(3, c.estimate, 0.0, c.lower, c.upper, 0.95)
    assert gate.passed and n is not None and n > 3
    assert gate.message.endswith(f"seeds 3 stored, 3 here): too few seeds to decide (about {n} seeds per side would)")
    assert f"95% interval [{c.low:+.3f}, {c.high:+.3f}], upper bound {c.upper:+.3f}" in gate.message


def test_seeds_needed_is_the_documented_power_formula():
    z, zp = 1.6448536269514722, 0.8416212335729143  # Phi^-1(0.95), Phi^-1(0.8)
    se = 0.1 / (2 * z)
    assert paired.seeds_needed(5, -0.05, -0.02, -0.1, 0.0, 0.95) == math.ceil(5 * ((z + zp) * se / 0.03) ** 2) == 32
    assert paired.seeds_needed(5, -0.02, -0.02, -0.1, 0.0, 0.95) is None  # on the threshold: no k decides
    assert paired.seeds_needed(5, 0.5, 0.0, 0.49, 0.51, 0.95) == 6  # already decidable: at least one more


def test_one_seed_on_a_side_fails_the_gate_saying_it_needs_two():
    rng = np.random.default_rng(5)
    gate, _ = decision(simulated(rng, 0.0, seeds=1), simulated(rng, 1.0, seeds=1), 0.5)
    assert not gate.passed  # default-deny: even a clear improvement
    assert gate.message.endswith("seeds 1 stored, 1 here): needs at least 2 seeds per side with --mlgym-confidence "
                                 "(none to estimate the noise from)")


def test_pairwise_covers_every_pair_of_agents_b_minus_a_and_is_capped():
    records = [rec(session="now", agent=f"ag{i}", seed=s, sub=7.0 + i + 0.1 * s) for i in range(9) for s in range(2)]
    out = noise.pairwise(records, 0.9)
    assert out is not None and len(out["pairs"]) == noise.MAX_PAIRS and out["left_out"] == 36 - noise.MAX_PAIRS
    first = out["pairs"][0]
    assert (first["a"], first["b"], first["confidence"]) == ("ag0", "ag1", 0.9)
    assert first["tasks"]["tiny"]["estimate"] == pytest.approx(1.0)  # ag1 scores 1 more: positive = b better
    assert first["aup"]["best_submission"]["change"]["estimate"] > 0 and first["poi"]["estimate"] == 1.0
    assert noise.pairwise([r for r in records if r.agent == "ag0"], 0.9) is None
    assert "ag1 vs ag0: AUP change +" in noise.lines(None, out)[0]
    assert noise.lines(None, out)[-1] == "note: 8 more pairs of agents not compared (at most 28)"


def test_each_pair_line_says_the_decision_and_the_seeds_that_would_make_one():
    def pair(lower, upper, k=5):
        change = {"estimate": (lower + upper) / 2, "low": lower, "high": upper, "lower": lower, "upper": upper}
        return {"a": "old", "b": "new", "confidence": 0.95, "seeds": {"a": k, "b": k, "paired": k},
                "aup": {"best_submission": {"change": change}}}
    assert noise.decision(pair(0.01, 0.05)) == "new is better with 95% confidence"
    assert noise.decision(pair(-0.05, -0.01)) == "new is worse with 95% confidence"
    undecided = noise.decision(pair(-0.01, 0.03))
    need = paired.seeds_needed(5, 0.01, 0.0, -0.01, 0.03, 0.95)
    assert need is not None and need > 5
    assert undecided == f"no decision at 95%: the interval holds no change (about {need} seeds per side would)"
    one = pair(0.01, 0.05)
    one["aup"]["best_submission"]["change"].update(lower=None, upper=None)
    assert noise.decision(one) == "no decision (needs at least 2 seeds per side)"


# -- through pytest --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["abc", "0.5", "1", "0", "nan", "1.5"])
def test_a_bad_confidence_is_a_one_line_usage_error(bench, value):
    result = bench.runpytest(f"--mlgym-confidence={value}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --mlgym-confidence: expected a confidence between 0.5 and 1 (exclusive), "
                                 f"e.g. 0.95, got '{value}'"])
    assert len([line for line in result.stderr.lines if line.strip()]) == 1


def test_confidence_gates_print_intervals_seeds_and_decide_the_session(bench):
    store = ResultsStore(bench.path / "old.jsonl")
    for s in range(3):
        store.append(rec(seed=s))  # stored: oracle scored 10 on every seed
    oracle(bench, "echo 9 > answer.txt", "submit")  # now 8 on every seed: AUP 0.400 -> 0.303
    junit = bench.path / "junit.xml"
    bench.makeini("[pytest]\nmlgym_confidence = 0.9\n")
    gated = ("--agent=oracle", "--agent=baseline", "--mlgym-compare=old.jsonl", "--mlgym-fail-under-aup=0.2",
             "-p", "no:cacheprovider", f"--junitxml={junit}")
    result = bench.runpytest(*gated, "--seeds=3", "--mlgym-max-regression=0.05")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    stored = bench.path / "old.jsonl"
    assert gate_lines(result) == [
        "PASSED --mlgym-fail-under-aup: AUP@3 (best submission, tau_max 0.4) at 90% confidence (one-sided; bootstrap "
        "over seeds): baseline 0.275 (90% interval [0.275, 0.275], upper bound 0.275; seeds 3): >= 0.2; oracle 0.400 "
        "(90% interval [0.400, 0.400], upper bound 0.400; seeds 3): >= 0.2",
        f"FAILED --mlgym-max-regression: AUP (best submission, tau_max 0.4, 1 common task) against {stored} at 90% "
        "confidence (one-sided; paired bootstrap over seeds): oracle 0.400 -> 0.303 (-0.097; 90% interval [-0.097, "
        "-0.097], upper bound -0.097; seeds 3 stored, 3 here): dropped by more than 0.05"]
    result.stdout.fnmatch_lines(["*= mlgym paired comparisons (intervals over seeds) =*",
                                 "oracle (now vs stored): AUP change -0.097 [-0.097, -0.097], P(improvement) 0.00 "
                                 "[0.00, 0.00] (90% intervals; seeds 3/3, 3 paired): this run is worse with 90% confidence",
                                 "oracle vs baseline: AUP change +* (90% intervals; seeds 3/3, 3 paired): oracle is "
                                 "better with 90% confidence",
                                 "*= mlgym gates =*"])
    summary = json.loads((bench.path / "reports" / "summary.json").read_text())
    assert summary["comparison"]["intervals"]["oracle"]["aup"]["best_submission"]["change"]["upper"] == \
        pytest.approx(-0.097, abs=1e-3)
    assert [(p["a"], p["b"]) for p in summary["paired"]["pairs"]] == [("baseline", "oracle")]
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().find("testsuite").find("properties")}
    assert props["compare.oracle.poi"] == "0.0 [0.0, 0.0]" and props["compare.oracle.aup_change"].startswith("-0.0")
    assert "paired.oracle.vs.baseline.aup_change" in props and props["gate.max_regression"].startswith("FAILED")
    assert "id=paired-table" in (bench.path / "reports" / "report.html").read_text()

    one = bench.runpytest(*gated, "--mlgym-max-regression=0.5")  # one seed: nothing estimates the noise
    assert one.ret == pytest.ExitCode.TESTS_FAILED
    lines = gate_lines(one)
    assert lines[0].startswith("FAILED --mlgym-fail-under-aup") and "oracle 0.400 (seeds 1): needs at least 2 seeds" \
        in lines[0]
    assert lines[1].endswith("seeds 1 stored, 1 here): needs at least 2 seeds per side with --mlgym-confidence "
                             "(none to estimate the noise from)")


def test_infra_failed_runs_stay_left_out_and_said_with_confidence():
    old = [rec(seed=s, sub=10.0 - 0.5 * s) for s in range(3)]
    new = [rec(session="now", seed=s, sub=9.0 - 0.5 * s) for s in range(2)] + [
        rec(session="now", seed=2, sub=None, best_attempt=None, status="infra_error", infra="RateLimitError")]
    c = gates.compare(old, new, confidence=0.9)
    gate = noise.max_regression(c, 0.5, "old.jsonl", 0.9)
    assert "(left out: runs that failed for infrastructure, 0 stored, 1 here)" in gate.message
    assert c["intervals"]["oracle"]["seeds"] == {"a": 2, "b": 2, "paired": 2}  # seed 2 is compared on neither side
    assert gate.passed and "seeds 2 stored, 2 here): dropped by at most 0.5" in gate.message
