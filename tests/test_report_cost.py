"""Cost-effectiveness: the Pareto frontier of AUP against cost, cost per unit of improvement, their
place in summary.json and report.html, and the report's warning when runs come from different hardware."""
from __future__ import annotations

import base64
import json
import math

import pytest
from test_report_html import Dom, make_records

from pytest_mlgym.compute import Compute
from pytest_mlgym.report import cost, html, summary
from pytest_mlgym.report.cost import frontier, improvement
from pytest_mlgym.results import RunRecord, Score


def test_dominated_points_are_off_the_frontier():
    pts = {"cheap-bad": (1.0, 0.2), "mid": (2.0, 0.6), "dear-good": (5.0, 0.9), "dominated": (3.0, 0.5),
           "dear-bad": (6.0, 0.1)}
    assert frontier(pts) == ["cheap-bad", "mid", "dear-good"]  # cheapest first


def test_ties_stay_on_the_frontier_and_a_weakly_dominated_point_does_not():
    assert frontier({"a": (1.0, 0.5), "b": (1.0, 0.5)}) == ["a", "b"]  # equal: neither dominates
    assert frontier({"a": (1.0, 0.5), "same-cost-worse": (1.0, 0.4)}) == ["a"]
    assert frontier({"a": (1.0, 0.5), "same-score-dearer": (2.0, 0.5)}) == ["a"]


def test_a_free_agent_that_scores_best_is_the_whole_frontier():
    assert frontier({"free": (0.0, 0.9), "paid": (3.0, 0.8), "also-free": (0.0, 0.1)}) == ["free"]
    assert frontier({"free": (0.0, 0.1), "paid": (3.0, 0.8)}) == ["free", "paid"]
    assert frontier({}) == []


def run(agent: str, seed: int, sub: float | None, *, direction: str = "max", baseline: float = 1.0,
        usd: float = 0.0, core: float | None = 2.0, status: str = "submitted", task: str = "t") -> RunRecord:
    return RunRecord(session="s", task=task, size="lite", agent=agent, policy="llm", seed=seed, metric="m",
                     direction=direction, baseline=baseline, tolerance=0.0, status=status, best_submission=sub,
                     best_attempt=sub, oracle_best_attempt=sub, cost_usd=usd, wall_s=10.0, finished_at=float(seed),
                     scores=[Score(step=1, kind="submit", score=sub)],
                     compute=Compute(cpu_model="X", logical_cores=4, core_seconds=core, gpu_seconds=0.0, wall_s=10.0))


def test_cost_per_unit_of_improvement_is_direction_aware():
    up = improvement("t", "a", [run("a", 0, 1.5, usd=1.0), run("a", 1, 2.5, usd=2.0)])
    assert up.mean_best_submission == 2.0 and up.improvement == pytest.approx(1.0)
    assert up.usd_per_unit == pytest.approx(3.0) and up.core_seconds_per_unit == pytest.approx(4.0)
    down = improvement("t", "a", [run("a", 0, 6.0, direction="min", baseline=10.0, usd=2.0)])
    assert down.improvement == pytest.approx(4.0) and down.usd_per_unit == pytest.approx(0.5)
    free = improvement("t", "a", [run("a", 0, 3.0, usd=0.0)])
    assert free.usd_per_unit == 0.0


@pytest.mark.parametrize("runs, why", [
    ([run("a", 0, 0.5, usd=1.0)], "no improvement"),  # worse (max)
    ([run("a", 0, 1.0, usd=1.0)], "no improvement"),  # equal: a zero gain would divide by zero
    ([run("a", 0, 12.0, direction="min", baseline=10.0, usd=1.0)], "no improvement"),  # worse (min)
    ([run("a", 0, None, usd=1.0, status="invalid")], "no valid submission"),
    ([run("a", 0, 9.0, usd=1.0, status="infra_error")], "no valid submission"),  # infra runs are not scored
], ids=["worse", "equal", "worse-min", "invalid", "infra"])
def test_no_improvement_gives_no_number(runs, why):
    i = improvement("t", "a", runs)
    assert i.improvement is None and i.usd_per_unit is None and i.core_seconds_per_unit is None
    assert i.reason.startswith(why) and i.cost_usd == 1.0


def test_summary_holds_the_cost_key_with_frontiers():
    recs = [run("cheap", s, 1.2 + 0.1 * s, usd=0.1) for s in range(2)] + \
           [run("dear", s, 3.0, usd=5.0, core=None if s else 1.0) for s in range(2)] + \
           [run("worse", s, 1.1, usd=6.0) for s in range(2)]
    s = summary.build(recs)
    c = s.cost
    aup = s.aup["best_submission"]
    assert {a: v.aup for a, v in c.agents.items()} == {a: aup[a] for a in ("cheap", "dear", "worse")}
    assert c.agents["dear"].cost_usd == 10.0 and c.agents["cheap"].cost_usd == pytest.approx(0.2)
    assert c.agents["dear"].core_seconds is None  # one run did not say: never a total that leaves it out
    assert c.agents["cheap"].core_seconds == 4.0 and c.agents["cheap"].wall_s == 20.0
    assert aup["dear"] > aup["cheap"] > aup["worse"]
    assert c.frontier["cost_usd"] == ["cheap", "dear"] and "worse" not in c.frontier["cost_usd"]
    assert c.frontier["core_seconds"] == ["cheap"]  # dear has no total: not on that axis
    # equal wall times and GPU-seconds: the best AUP alone is on those frontiers
    assert c.agents["dear"].frontier == ["cost_usd", "wall_s", "gpu_seconds"]
    assert c.agents["cheap"].frontier == ["cost_usd", "core_seconds"] and c.agents["worse"].frontier == []
    assert c.tasks["t"]["worse"].usd_per_unit == pytest.approx(12.0 / 0.1)
    assert c.hardware == ["X x4"]
    back = summary.Summary.of(json.loads(json.dumps(s.as_dict())))
    assert back.cost == c
    old = s.as_dict()
    del old["cost"]  # a summary.json written before the key existed still reads
    assert summary.Summary.of(old).cost == cost.CostSummary()
    for v in c.tasks["t"].values():
        assert v.usd_per_unit is None or (v.usd_per_unit >= 0 and math.isfinite(v.usd_per_unit))


def test_report_shows_the_cost_plot_and_tables(tmp_path):
    recs = make_records(tmp_path)  # "good" costs 0.25 a run and scores better, "meh" is free
    dom = Dom(html.write(recs, tmp_path / "report.html").read_text(encoding="utf-8")).root
    sec = dom.find("section", id="cost")
    img = sec.find("img", id="cost-plot")
    assert img.attrs["src"].startswith("data:image/png;base64,")
    assert base64.b64decode(img.attrs["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {r.attrs["data-agent"]: r for r in sec.find("table", id="cost-table").find_all("tr")[1:]}
    assert sorted(rows) == ["good", "meh"]
    assert "cost_usd" in rows["good"].text() and "cost_usd" in rows["meh"].text()  # both on the frontier
    per = sec.find("table", id="cost-per-improvement").find_all("tr")[1:]
    assert len(per) == 6  # three tasks x two agents
    assert not dom.find_all("p", id="hardware")  # no hardware recorded: nothing to warn about


def test_report_warns_when_runs_come_from_different_hardware(tmp_path):
    recs = make_records(tmp_path)
    for r in recs:
        r.compute = Compute(cpu_model="AMD EPYC" if r.seed else "Intel Xeon", logical_cores=8)
    dom = Dom(html.write(recs, tmp_path / "report.html").read_text(encoding="utf-8")).root
    warn = dom.find("p", id="hardware").text()
    assert "2 kinds" in warn and "AMD EPYC x8" in warn and "Intel Xeon x8" in warn
    for r in recs:
        r.compute = Compute(cpu_model="AMD EPYC", logical_cores=8)
    dom = Dom(html.write(recs, tmp_path / "report.html").read_text(encoding="utf-8")).root
    assert not dom.find_all("p", id="hardware")


def test_no_cost_plot_without_aup_and_cost():
    assert cost.plot(cost.CostSummary()) is None
