"""summary.json's ``stats`` (report/aggregate.py): mean and IQM of normalised scores with stratified
bootstrap intervals, per-task means over seeds, AUP@j with intervals; the terminal, report.html and
JUnit outputs of them."""
from __future__ import annotations

import numpy as np
import pytest

from pytest_mlgym.report import aggregate, html, summary, terminal
from pytest_mlgym.results import RunRecord

# task -> (direction, baseline, reference)
TASKS = {"up": ("max", 0.0, 1.0), "down": ("min", 10.0, 5.0), "flat": ("max", 2.0, 4.0)}


def rec(task: str, agent: str, seed: int, normalised: float | None, status: str = "submitted",
        reference: bool = True) -> RunRecord:
    """A run whose best submission and best attempt are ``normalised`` on the task's scale."""
    direction, base, ref = TASKS[task]
    raw = None if normalised is None else base + normalised * (ref - base)
    return RunRecord(session="s", task=task, size="lite", agent=agent, policy="replay", seed=seed, metric="m",
                     direction=direction, baseline=base, tolerance=0.0, reference=ref if reference else None,
                     best_submission=raw, best_attempt=raw, oracle_best_attempt=raw, status=status,
                     infra="RateLimitError" if status == "infra_error" else None, finished_at=float(seed))


def test_intervals_cover_the_true_mean_and_iqm_at_about_their_confidence():
    """Synthetic runs with known means (seeded): the stratified intervals hold the truth in about 95%
    of 200 simulated benchmarks, and are not so wide that they always do."""
    rng = np.random.default_rng(7)
    task_means = np.array([0.1, 0.4, 0.8, 1.2, -0.2, 0.5])
    hits = {"mean": 0, "iqm": 0}
    widths = []
    reps = 200
    for _ in range(reps):
        samples = [rng.normal(m, 0.3, size=10) for m in task_means]
        e = aggregate.estimate(samples, aggregate._mean)
        hits["mean"] += e.low <= task_means.mean() <= e.high
        widths.append(e.high - e.low)
        same = [rng.normal(0.6, 0.3, size=10) for _ in task_means]  # symmetric: the IQM is the mean
        i = aggregate.estimate(same, aggregate._iqm)
        hits["iqm"] += i.low <= 0.6 <= i.high
    assert 0.88 * reps <= hits["mean"] <= 0.99 * reps, hits
    assert 0.88 * reps <= hits["iqm"] <= 0.995 * reps, hits
    se = 0.3 / np.sqrt(60)  # the standard error of the pooled mean: the width is about 2 x 1.96 of it
    assert 3.0 * se < np.mean(widths) < 4.6 * se, (np.mean(widths), se)


def test_the_stratified_interval_resamples_within_tasks():
    """Two tasks far apart: resampling seeds within each task keeps the mean's interval narrow; a
    pooled resample would mix the tasks and make it wide."""
    e = aggregate.estimate([np.array([0.0, 0.01, 0.02, 0.03]), np.array([10.0, 10.01, 10.02, 10.03])],
                           aggregate._mean)
    assert e.value == pytest.approx(5.015) and e.high - e.low < 0.03 and e.n == 8


def test_stats_from_records_unequal_seeds_infra_invalid_and_unanchored():
    records = [rec("up", "a", s, v) for s, v in enumerate([0.2, 0.4, 0.6])]
    records += [rec("down", "a", s, v) for s, v in enumerate([1.0, 0.8])]
    records += [rec("down", "a", 2, 5.0, status="infra_error")]  # left out, whatever it scored
    records += [rec("up", "b", s, v) for s, v in enumerate([None, 0.0])]  # no valid score counts as 0
    records += [rec("down", "b", s, v) for s, v in enumerate([2.0, 2.0])]
    records += [rec("flat", ag, s, 0.5, reference=False) for ag in "ab" for s in range(2)]
    st = aggregate.build(records)
    assert st.unanchored == ["flat"]
    a, b = st.agents["a"], st.agents["b"]
    assert (a.tasks, a.seeds, b.tasks, b.seeds) == (2, 2, 2, 2)  # each task's lowest 2 seeds
    assert a.mean["best_submission"].value == pytest.approx((0.2 + 0.4 + 1.0 + 0.8) / 4)
    assert b.mean["best_attempt"].value == pytest.approx((0 + 0 + 2 + 2) / 4)
    assert a.iqm["best_submission"].value == pytest.approx(np.mean([0.4, 0.8]))  # the middle half of 4
    assert a.mean["best_submission"].low < a.mean["best_submission"].value < a.mean["best_submission"].high
    assert b.mean["best_submission"].low == b.mean["best_submission"].high == 1.0  # 0, 0 and 2, 2: no spread
    up_a = st.tasks["up"]["a"]
    assert up_a.runs == 3 and up_a.raw["best_submission"].value == pytest.approx(0.4)
    assert st.tasks["down"]["a"].runs == 2  # the infra_error run is not counted
    assert st.tasks["up"]["b"].raw["best_submission"].n == 1  # raw means: the runs with a score
    assert st.tasks["flat"]["a"].normalised == {} and st.tasks["flat"]["a"].raw["best_submission"].value == 3.0


def test_one_seed_gives_no_interval_and_equal_seeds_a_point():
    one = aggregate.build([rec("up", "a", 0, 0.3), rec("down", "a", 0, 0.5)])
    e = one.agents["a"].mean["best_submission"]
    assert (e.value, e.low, e.high) == (pytest.approx(0.4), None, None)
    assert aggregate.fmt(e) == "0.400"
    same = aggregate.build([rec("up", "a", s, 0.3) for s in range(3)]).agents["a"].iqm["best_submission"]
    assert same.low == same.high == pytest.approx(0.3)


def summary_of(records):
    return summary.build(records)


def three_seed_records():
    rng = np.random.default_rng(3)
    out = []
    for agent, shift in (("strong", 0.9), ("weak", 0.2)):
        for task in ("up", "down"):
            out += [rec(task, agent, s, float(shift + rng.normal(0, 0.1))) for s in range(3)]
    return out


def test_summary_json_has_stats_with_aup_at_j_intervals():
    s = summary_of(three_seed_records())
    st = s.as_dict()["stats"]
    assert set(st["agents"]) == {"strong", "weak"}
    assert st["agents"]["strong"]["iqm"]["best_submission"]["value"] > st["agents"]["weak"]["iqm"]["best_submission"]["high"]
    curves = s.stats.aup_at["best_submission"]
    assert set(curves) == {"strong", "weak", summary.RECORDED}
    for method, curve in curves.items():
        assert [e.n for e in curve] == [1, 2, 3]
        assert [e.value for e in curve] == [s.aup_at[str(j)]["best_submission"][method] for j in (1, 2, 3)]
        assert all(e.low is not None and e.low <= e.high for e in curve)
    at_k = curves["strong"][2]  # j = k: the usual bootstrap of all runs holds the point estimate
    assert at_k.low - 1e-9 <= at_k.value <= at_k.high + 1e-9
    assert summary.Summary.of(s.as_dict()).stats == s.stats  # summary.json reads back


def test_terminal_and_junit_show_iqm_and_mean_with_intervals():
    s = summary_of(three_seed_records())
    lines = terminal.lines(s)
    strong = next(line for line in lines if line.strip().startswith("strong: IQM"))
    iqm = s.stats.agents["strong"].iqm["best_submission"]
    assert f"IQM {iqm.value:.3f} [{iqm.low:.3f}, {iqm.high:.3f}]" in strong and "(2 tasks x 3 seeds)" in strong
    props = aggregate.junit_properties(s.stats)
    assert props["stats.iqm.strong"] == aggregate.fmt(iqm) and "stats.mean.weak" in props


def test_report_html_shows_the_stats_tables_and_the_aup_at_j_plot(tmp_path):
    from test_report_html import Dom, table

    records = three_seed_records() + [rec("flat", "strong", 0, 0.5, reference=False)]
    text = html.write(records, tmp_path / "report.html").read_text()
    dom = Dom(text).root
    section = dom.find("section", id="stats")
    rows = table(section.find("table", id="stats-agents"))
    assert rows[0][:3] == ["agent", "tasks", "seeds per task"]
    strong = next(r for r in rows if r[0] == "strong")
    st = summary.build(records).stats.agents["strong"]
    assert strong[1:3] == ["2", "3"] and aggregate.fmt(st.iqm["best_submission"]) in strong
    tasks = table(section.find("table", id="stats-tasks"))
    flat = next(r for r in tasks if r[0] == "flat")
    assert flat[:3] == ["flat", "strong", "1"] and flat[-1] == "-"  # no anchor: no normalised mean
    assert "no reference anchor): flat" in section.text()
    img = section.find("img", id="aup-at-plot")
    assert img.attrs["src"].startswith("data:image/png;base64,")
