"""report.html from stored result files (parsed back with the stdlib's html.parser), and the AUP
bootstrap over seeds."""
from __future__ import annotations

import base64
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_mlgym import scoring
from pytest_mlgym.report import html, summary
from pytest_mlgym.results import ResultsStore, RunRecord, Score
from pytest_mlgym.session import save_trajectory

RECORDED = summary.RECORDED
EVIL_ACTION = 'cat x </details></pre><script>alert("pwned")</script><img src=x onerror=alert(1)> & done'
EVIL_OBS = "</pre></li></ol></details></section><script>document.title='owned'</script><!-- \"'"

# task -> (direction, baseline); agent -> seed -> task -> [(step, kind, score)] (the last scored is the submission)
TASKS = {"alpha": ("max", 1.0), "beta": ("min", 10.0), "gamma": ("max", 0.5)}
REFERENCES = {"alpha": 3.0, "beta": 4.0, "gamma": 1.0}  # the normalised score's 1 (pytest_mlgym.anchors)
RUNS = {
    "good": {0: {"alpha": [(2, "validate", 1.5), (4, "submit", 2.0)],
                 "beta": [(2, "validate", 4.0), (3, "submit", 5.0)],
                 "gamma": [(1, "submit", 0.9)]},
             1: {"alpha": [(2, "validate", 3.0), (5, "submit", 1.2)],
                 "beta": [(2, "submit", 8.0)],
                 "gamma": [(2, "validate", None), (3, "submit", 0.6)]}},
    "meh": {0: {"alpha": [(1, "submit", 1.1)],
                "beta": [(2, "validate", 12.0), (4, "submit", 9.0)],
                "gamma": [(2, "submit", None)]},
            1: {"alpha": [(1, "validate", 0.8), (2, "submit", 1.05)],
                "beta": [(1, "submit", 20.0)],
                "gamma": [(1, "submit", 0.4)]}},
}


def _best(vals: list, direction: str):
    vals = [v for v in vals if v is not None]
    return None if not vals else max(vals) if direction == "max" else min(vals)


def expected_scores(kind: str, seeds=(0, 1)) -> dict:
    """Best attempt / best submission of each task and agent, best of the given seeds, by hand."""
    out = {}
    for task, (direction, _) in TASKS.items():
        out[task] = {}
        for agent, by_seed in RUNS.items():
            per_seed = []
            for seed in seeds:
                pts = by_seed[seed][task]
                per_seed.append(_best([s for _, _, s in pts], direction) if kind in ("best_attempt", "oracle_best_attempt")
                                else next((s for _, _, s in reversed(pts) if s is not None), None))
            out[task][agent] = _best(per_seed, direction)
    return out


def make_records(report_dir: Path, session: str = "s1", evil: bool = True) -> list[RunRecord]:
    """Two agents x two seeds x three tasks, each with a small saved trajectory; one action and
    one observation try to inject markup."""
    records = []
    t = 1000.0
    for agent, by_seed in RUNS.items():
        for seed, by_task in by_seed.items():
            for task, pts in by_task.items():
                direction, base = TASKS[task]
                last = max(step for step, _, _ in pts)
                traj = [{"step": 0, "action": "(reset)", "observation": f"# Task {task}", "reward": 0.0, "t": 0.0}]
                kinds = {step: kind for step, kind, _ in pts}
                for step in range(1, last + 1):
                    action = kinds.get(step, f"python train.py --lr 0.{step}")
                    if evil and (task, agent, seed) == ("alpha", "meh", 1) and step == 1:
                        action = EVIL_ACTION
                    obs = EVIL_OBS if evil and (task, agent, seed) == ("beta", "good", 0) and step == 1 else f"out {step}"
                    traj.append({"step": step, "action": action, "thought": f"thinking {agent} {seed} {step}",
                                 "observation": obs, "reward": 0.0, "t": float(step)})
                scores = [Score(step=s, kind=k, score=v, reason="" if v is not None else "bad artefact", t=float(s))
                          for s, k, v in pts]
                att = _best([v for _, _, v in pts], direction)
                sub = next((v for _, _, v in reversed(pts) if v is not None), None)
                t += 1
                rec = RunRecord(session=session, task=task, size="lite", agent=agent, policy="replay", seed=seed,
                                metric="score", direction=direction, baseline=base, tolerance=0.0, scores=scores,
                                reference=REFERENCES[task],
                                best_attempt=att, oracle_best_attempt=att, best_submission=sub, status="submitted" if sub is not None else "invalid",
                                steps=last, wall_s=10.0 * (seed + 1), cost_usd=0.25 if agent == "good" else 0.0,
                                passed=sub is not None and (sub > base if direction == "max" else sub < base),
                                finished_at=t)
                rec.trajectory = str(save_trajectory(report_dir, rec, traj).relative_to(report_dir))
                records.append(rec)
    return records


def make_report(tmp: Path) -> Path:
    """A results.jsonl with the records above (and an older session), and its report.html."""
    report_dir = tmp / "reports"
    store = ResultsStore(report_dir / "results.jsonl")
    for rec in make_records(report_dir, session="old", evil=False)[:3]:
        store.append(rec)
    for rec in make_records(report_dir):
        store.append(rec)
    return html.main(store.path, report_dir / "report.html")


# -- a small DOM from html.parser -----------------------------------------------------------------
VOID = {"img", "meta", "input", "br", "hr", "link", "source", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict, parent: "Node | None"):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs) -> list["Node"]:
        return [n for n in self.iter() if (tag is None or n.tag == tag)
                and (cls is None or cls in n.attrs.get("class", "").split())
                and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def find(self, *a, **kw) -> "Node":
        found = self.find_all(*a, **kw)
        assert len(found) == 1, (a, kw, len(found))
        return found[0]


class Dom(HTMLParser):
    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.root = self.cur = Node("#root", {}, None)
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        assert n is not None, f"stray </{tag}>"
        self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def table(node: Node) -> list[list[str]]:
    return [[c.text().strip() for c in tr.children if isinstance(c, Node) and c.tag in ("th", "td")]
            for tr in node.find_all("tr")]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = make_report(tmp_path_factory.mktemp("report"))
    text = path.read_text(encoding="utf-8")
    return path, text, Dom(text).root


# -- the page -------------------------------------------------------------------------------------
def test_self_contained_one_script_no_external_urls(report):
    _, text, dom = report
    scripts = dom.find_all("script")
    assert len(scripts) == 1 and scripts[0].text() == html.JS  # the filter; no agent text made a script
    for node in dom.iter():
        assert not [k for k in node.attrs if k.startswith("on")], node.attrs  # no event handler attributes
        for key in ("src", "href"):
            if key in node.attrs:
                assert node.attrs[key].startswith(("#", "data:image/png;base64,")), node.attrs
    assert "http://" not in text and "https://" not in text and "<link" not in text


def test_profile_images_are_real_pngs(report):
    _, _, dom = report
    for kind in summary.KINDS:
        img = dom.find("img", id=f"profile-{kind}")
        png = base64.b64decode(img.attrs["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width > 300 and height > 200
    assert len(dom.find_all("img", cls="steps-plot")) == len(TASKS)


def test_aup_table_with_intervals_matches_the_scores(report):
    _, _, dom = report
    rows = table(dom.find("table", id="aup-table"))
    assert rows[0] == ["method", "best attempt AUP@2", "95% CI", "best submission AUP@2", "95% CI",
                       "oracle best attempt (test-selected) AUP@2", "95% CI"]
    got = {r[0]: r[1:] for r in rows[1:]}
    assert set(got) == {"good", "meh", RECORDED}
    dirs = {t: d for t, (d, _) in TASKS.items()}
    bases = {t: b for t, (_, b) in TASKS.items()}
    sets = {kind: expected_scores(kind) for kind in summary.KINDS}
    tau = scoring.tau_max_for(*sets.values(), directions=dirs, baselines=bases)
    for i, kind in enumerate(summary.KINDS):
        want = scoring.aup(sets[kind], dirs, bases, tau_max=tau, baseline_name=RECORDED)
        for m, cells in got.items():
            assert cells[2 * i] == f"{want[m]:.3f}", (kind, m)
            lo, hi = (float(x) for x in cells[2 * i + 1].split("–"))
            assert 0 <= lo <= hi <= tau
    order = [r[0] for r in rows[1:]]
    assert [float(got[m][0]) for m in order] == sorted((float(got[m][0]) for m in order), reverse=True)
    # AUP@j: j = 1 is the best of seed 0 alone, j = 2 the table above
    rows = table(dom.find("table", id="aup-at-k"))
    assert rows[0][1:] == ["best attempt AUP@1", "best attempt AUP@2", "best submission AUP@1", "best submission AUP@2",
                           "oracle best attempt (test-selected) AUP@1", "oracle best attempt (test-selected) AUP@2"]
    first = {kind: scoring.aup(expected_scores(kind, seeds=(0,)), dirs, bases, tau_max=tau, baseline_name=RECORDED)
             for kind in summary.KINDS}
    for r in rows[1:]:
        m = r[0]
        assert r[1] == f"{first['best_attempt'][m]:.3f}" and r[3] == f"{first['best_submission'][m]:.3f}"
        assert r[2] == got[m][0] and r[4] == got[m][2]


def test_task_rows(report):
    _, _, dom = report
    sections = dom.find_all("section", cls="task")
    assert [s.attrs["data-task"] for s in sections] == sorted(TASKS)
    for sec in sections:
        task = sec.attrs["data-task"]
        rows = {r[0]: r[1:] for r in table(sec.find("table", cls="task-table"))}
        assert rows["method"] == ["best attempt", "best submission", "passed", "status", "cost", "wall time"]
        base = TASKS[task][1]
        assert rows[RECORDED][:2] == [f"{base:.4g}", f"{base:.4g}"]
        for agent in RUNS:
            att, sub = expected_scores("best_attempt")[task][agent], expected_scores("best_submission")[task][agent]
            cells = rows[agent]
            assert cells[0] == ("-" if att is None else f"{att:.4g}") and cells[1] == ("-" if sub is None else f"{sub:.4g}")
            assert cells[2].endswith("/2") and "submitted" in cells[3]
            assert cells[4] == ("$0.5000" if agent == "good" else "$0.0000") and cells[5] == "30.0 s"
    assert "invalid x1" in dom.find("section", data_task="gamma").text()  # meh seed 0 never scored on gamma


def test_every_run_has_its_trajectory_with_scored_steps_highlighted(report):
    _, _, dom = report
    runs = dom.find_all("details", cls="run")
    assert len(runs) == len(TASKS) * 4  # the older session is not shown
    for run in runs:
        task, agent, seed = run.attrs["data-task"], run.attrs["data-agent"], int(run.attrs["data-seed"])
        pts = RUNS[agent][seed][task]
        steps = run.find_all("li", cls="step")
        assert [int(s.attrs["data-step"]) for s in steps] == list(range(0, max(p[0] for p in pts) + 1))
        scored = run.find_all("li", cls="scored")
        assert [int(s.attrs["data-step"]) for s in scored] == [p[0] for p in pts]
        for li, (_, kind, value) in zip(scored, pts):
            badge = li.find("span", cls="badge").text()
            assert badge == (f"{kind}: {value:.4g}" if value is not None else f"{kind}: invalid (bad artefact)")
        assert "thinking" in steps[1].find("div", cls="thought").text()


def test_agent_text_is_escaped_and_shown_verbatim(report):
    _, text, dom = report
    assert "<script>alert" not in text and "<img src=x" not in text and "<script>document" not in text
    run = dom.find("details", cls="run", data_task="alpha", data_agent="meh", data_seed="1")
    step = run.find("li", data_step="1")
    assert step.find("pre", cls="action").text() == EVIL_ACTION
    assert len(run.find_all("li", cls="step")) == 3  # the </details> in the action closed nothing
    run = dom.find("details", cls="run", data_task="beta", data_agent="good", data_seed="0")
    assert run.find("li", data_step="1").find("pre", cls="obs").text() == EVIL_OBS
    assert [s.attrs["data-step"] for s in run.find_all("li", cls="step")] == ["0", "1", "2", "3"]


def test_sessions_missing_trajectory_and_cli(tmp_path):
    report_dir = tmp_path / "reports"
    store = ResultsStore(report_dir / "results.jsonl")
    old = make_records(report_dir, session="old", evil=False)[:2]
    for rec in old + make_records(report_dir, session="new")[:1]:
        store.append(rec)
    (report_dir / old[1].trajectory).unlink()
    dom = Dom(html.main(store.path, tmp_path / "one.html", sessions=["old"]).read_text()).root
    assert len(dom.find_all("details", cls="run")) == 2
    assert "holds 2 sessions" in dom.find("p", id="sessions").text()
    missing = dom.find("details", cls="run", data_task=old[1].task, data_agent="good", data_seed="0")
    assert "No such file" in missing.find("p", cls="note").text()
    assert all("scored" in li.attrs["class"] for li in missing.find_all("li", cls="step"))  # the scores remain
    with pytest.raises(SystemExit, match="no session nope; sessions: old, new"):
        html.main(store.path, tmp_path / "x.html", sessions=["nope"])
    # the command line: the last session by default, report.html beside the results
    out = subprocess.run([sys.executable, "-m", "pytest_mlgym", "report", str(store.path)], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(report_dir / "report.html")
    dom = Dom((report_dir / "report.html").read_text()).root
    assert [r.attrs["data-agent"] for r in dom.find_all("details", cls="run")] == ["good"]
    assert "session new" in dom.find("p", id="about").text()


def test_write_as_the_plugin_calls_it(tmp_path):
    """At the end of a run: this session's records and its summary (maybe interrupted); the
    trajectories are found beside the report."""
    report_dir = tmp_path / "reports"
    records = make_records(report_dir)
    s = summary.build(records)
    s.interrupted = {"finished": 12, "interrupted": 1, "not_started": 3}
    dom = Dom(html.write(records, report_dir / "report.html", summary=s).read_text()).root
    assert "1 interrupted and 3 not started" in dom.find("p", id="interrupted").text()
    assert len(dom.find_all("li", cls="step")) == 41
    assert [n.attrs.get("id") for n in dom.find_all("p", cls="note")] == ["interrupted"]  # every trajectory found


def test_importing_the_report_modules_does_not_import_matplotlib():
    code = ("import sys, pytest_mlgym.report.html, pytest_mlgym.report.plots, pytest_mlgym.report.summary; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_summary_holds_intervals_and_aup_at_j(tmp_path):
    s = summary.build(make_records(tmp_path)).as_dict()
    assert s["k"] == 2 and set(s["aup_at"]) == {"1", "2"} and s["aup_at"]["2"] == s["aup"]
    for kind in summary.KINDS:
        assert set(s["aup_ci"][kind]) == set(s["aup"][kind]) == {"good", "meh", RECORDED}
        assert all(0 <= lo <= hi <= s["tau_max"] for lo, hi in s["aup_ci"][kind].values())
    assert s["bootstrap"]["n"] >= 1000
    assert summary.build(make_records(tmp_path)).as_dict()["aup_ci"] == s["aup_ci"]  # seeded: the same every time


# -- the bootstrap ---------------------------------------------------------------------------------
names = st.text("abcdef", min_size=1, max_size=3)
value = st.one_of(st.none(), st.floats(1e-2, 1e2), st.floats(-5, -0.1))


@st.composite
def problems(draw):
    tasks = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    methods = draw(st.lists(names.map(str.upper), min_size=1, max_size=4, unique=True))
    dirs = {t: draw(st.sampled_from(["max", "min"])) for t in tasks}
    bases = {t: draw(st.one_of(st.floats(1e-2, 1e2), st.floats(-5, -0.1))) for t in tasks}
    return tasks, methods, dirs, bases


@settings(max_examples=100, deadline=None)
@given(problems(), st.data(), st.integers(1, 5))
def test_equal_seeds_give_a_zero_width_interval_at_the_point_estimate(problem, data, k):
    tasks, methods, dirs, bases = problem
    one = {t: {m: data.draw(value) for m in methods} for t in tasks}
    runs = {t: {m: [v] * data.draw(st.integers(1, k)) for m, v in ms.items()} for t, ms in one.items()}
    ci = scoring.aup_bootstrap(runs, dirs, bases, n_boot=200, seed=data.draw(st.integers(0, 2**32 - 1)))
    point = scoring.aup(one, dirs, bases)
    assert set(ci) == set(point)
    for m, (lo, hi) in ci.items():
        assert lo == hi and lo == pytest.approx(point[m], abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(problems(), st.data())
def test_intervals_are_seeded_ordered_and_within_bounds(problem, data):
    tasks, methods, dirs, bases = problem
    runs = {t: {m: data.draw(st.lists(value, min_size=1, max_size=4)) for m in methods} for t in tasks}
    seed = data.draw(st.integers(0, 2**32 - 1))
    tau = scoring.tau_max_for({t: {m: scoring.best_of_k(v, dirs[t]) for m, v in ms.items()} for t, ms in runs.items()},
                              directions=dirs, baselines=bases)
    a = scoring.aup_bootstrap(runs, dirs, bases, n_boot=300, seed=seed)
    assert a == scoring.aup_bootstrap(runs, dirs, bases, n_boot=300, seed=seed)
    for lo, hi in a.values():
        assert 0 <= lo <= hi <= tau + 1e-12


def test_resampling_follows_best_of_k_with_replacement():
    """One method with runs [good, bad]: a resample's best of 2 is bad only when both draws are
    bad (probability 1/4), so the 95% interval spans both AUPs."""
    dirs, bases = {"t": "max", "u": "max"}, {"t": 1.0, "u": 1.0}
    runs = {"t": {"A": [4.0, 2.0], "B": [4.0]}, "u": {"A": [4.0], "B": [4.0]}}
    good = scoring.aup({"t": {"A": 4.0, "B": 4.0}, "u": {"A": 4.0, "B": 4.0}}, dirs, bases, tau_max=1.0)["A"]
    bad = scoring.aup({"t": {"A": 2.0, "B": 4.0}, "u": {"A": 4.0, "B": 4.0}}, dirs, bases, tau_max=1.0)["A"]
    assert bad < good
    wide = scoring.aup_bootstrap(runs, dirs, bases, tau_max=1.0, n_boot=4000, seed=1)
    assert wide["A"] == pytest.approx((bad, good)) and wide["B"] == pytest.approx((good, good))
    # about 1/4 of the resamples drew "bad" twice: the 20% quantile is bad, the 30% one good
    assert scoring.aup_bootstrap(runs, dirs, bases, tau_max=1.0, n_boot=4000, confidence=0.6, seed=1)["A"][0] \
        == pytest.approx(bad)
    assert scoring.aup_bootstrap(runs, dirs, bases, tau_max=1.0, n_boot=4000, confidence=0.4, seed=1)["A"] \
        == pytest.approx((good, good))
    assert np.isfinite(list(wide.values())).all()


@pytest.mark.parametrize("call, match", [
    (lambda: scoring.aup_bootstrap({"t": {"baseline": [1.0]}}, {"t": "max"}, {"t": 1.0}), "already named"),
    (lambda: scoring.aup_bootstrap({"t": {"a": [1.0]}}, {}, {"t": 1.0}), "lacks"),
    (lambda: scoring.aup_bootstrap({"t": {"a": [1.0]}}, {"t": "max"}, {"t": 1.0}, confidence=1.0), "confidence"),
    (lambda: scoring.aup_bootstrap({"t": {"a": [1.0]}}, {"t": "max"}, {"t": 1.0}, tau_max=0), "tau_max"),
])
def test_bootstrap_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
