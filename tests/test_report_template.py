"""report.html is a Jinja2 template rendered with autoescape: names and reasons from records (a task
id, an agent name, a metric, a status reason) are text, never markup, wherever the page shows them."""
from __future__ import annotations

import tomllib
from pathlib import Path

from test_report_html import Dom

from pytest_mlgym.report import html, summary
from pytest_mlgym.results import RunRecord, Score

TASK = "<script>alert('task')</script>"
AGENT = "<script>alert(\"agent\")</script>' data-x='1"
REASON = "</td></tr></table><script>alert('reason')</script>"
METRIC = "<b onmouseover=alert(1)>acc</b>"


def records() -> list[RunRecord]:
    base = dict(session="s<script>", task=TASK, size="lite", policy="replay", metric=METRIC, direction="max",
                baseline=6.0, tolerance=0.0, finished_at=1.0)
    return [RunRecord(**base, agent=AGENT, seed=0, status="invalid", reason=REASON,
                      scores=[Score(step=1, kind="submit", score=None, reason=REASON)]),
            RunRecord(**base, agent="ok", seed=0, status="submitted", best_attempt=7.0, best_submission=7.0,
                      scores=[Score(step=1, kind="submit", score=7.0)])]


def test_names_and_reasons_holding_script_tags_are_escaped(tmp_path):
    recs = records()
    text = html.write(recs, tmp_path / "report.html").read_text(encoding="utf-8")
    dom = Dom(text).root
    assert text.count("<script") == 1 and [s.text() for s in dom.find_all("script")] == [html.JS]
    assert "<b onmouseover" not in text and not [n for n in dom.iter() if any(k.startswith("on") for k in n.attrs)]
    assert not [n for n in dom.iter() if "data-x" in n.attrs]  # the quote in the agent name closed no attribute
    sec = dom.find("section", cls="task")
    assert sec.attrs["data-task"] == TASK and sec.find("h3").text() == TASK and METRIC in sec.find("p").text()
    row = sec.find("tr", data_agent=AGENT)
    assert row.find("th").text() == AGENT and row.find("td", cls="status").attrs["title"] == REASON
    run = dom.find("details", cls="run", data_agent=AGENT)
    assert run.attrs["data-task"] == TASK and run.find_all("summary")[0].text().endswith(f"({REASON})")
    assert run.find("span", cls="badge").text() == f"submit: invalid ({REASON})"
    assert AGENT in dom.find("p", id="about").text() and "session s<script>" in dom.find("p", id="about").text()


def test_the_template_ships_with_the_package():
    assert (html.TEMPLATES / "report.html.j2").is_file()
    data = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["pytest_mlgym"]
    assert any(Path("report/templates/report.html.j2").match(p) for p in patterns), patterns
    assert summary.build(records()).tasks[TASK].agents[AGENT].reasons == [REASON]


def test_the_summary_model_round_trips_through_its_json(tmp_path):
    s = summary.build(records())
    s.interrupted = {"finished": 2, "interrupted": 0, "not_started": 1}
    summary.write(s, tmp_path / "summary.json")
    import json

    data = json.loads((tmp_path / "summary.json").read_text())
    assert "gates" not in data and "comparison" not in data and data["interrupted"]["not_started"] == 1
    assert json.loads(json.dumps(summary.Summary.of(data).as_dict())) == data == json.loads(json.dumps(s.as_dict()))
