"""``report.html``: one self-contained page (inline CSS, PNG plots as data URIs, a few lines of
inline JS, nothing fetched) with the AUP table and its bootstrap intervals, AUP@j, the
performance profiles, every task's scores and score-over-steps plot, and every run's trajectory.

The page is the Jinja2 template ``templates/report.html.j2``, rendered with autoescape on: every
piece of text that comes from a record or a trajectory is escaped (the agent is untrusted and its
actions, thoughts and observations must never become markup); only this module's CSS and JS and the
plots' data URIs are marked safe.

    python -m pytest_mlgym report reports/results.jsonl [--out FILE] [--session ID ...]
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .. import selection
from ..metric import Metric
from ..results import ResultsStore, RunRecord, Score
from . import summary as summary_mod
from . import trust
from .summary import KINDS, RECORDED, Summary
from .terminal import infra_cell

TEMPLATES = Path(__file__).resolve().parent / "templates"
FIELD_CHARS = 8000  # an action, thought or observation longer than this is cut to its head and tail
TITLES = {"best_attempt": "best attempt", "best_submission": "best submission",
          "oracle_best_attempt": "oracle best attempt (test-selected)"}


def main(results_path: Path, out_path: Path, sessions: list[str] | None = None) -> Path:
    """Write the report of ``results_path``'s runs to ``out_path``. Without ``sessions`` the report
    shows the last session of the file (the one of its last record: the latest pytest run, the
    same records as its ``summary.json``); give sessions to show (and compare) others."""
    records = ResultsStore(results_path).read()
    known = selection.sessions(records)
    last = selection.last_session(records)
    if last is None:
        raise SystemExit(f"{results_path}: no runs recorded")
    chosen = list(sessions) if sessions else [last]
    missing = [s for s in chosen if s not in known]
    if missing:
        raise SystemExit(f"{results_path}: no session {', '.join(missing)}; sessions: {', '.join(known)}")
    others = len(known) - len(set(chosen))
    note = (f"{results_path.name} holds {len(known)} sessions; this page shows {', '.join(chosen)} "
            "(python -m pytest_mlgym report --session ID picks others)") if others else ""
    return write(selection.in_sessions(records, chosen), out_path, report_dir=results_path.parent, note=note)


def write(records: list[RunRecord], out_path: Path, report_dir: Path | None = None,
          summary: Summary | dict | None = None, note: str = "") -> Path:
    """Write the report of ``records`` to ``out_path`` atomically and return its path. Trajectory
    paths are relative to ``report_dir`` (default: the folder of ``out_path``); ``summary`` is
    ``summary.build(records)``, computed when not given."""
    out_path = Path(out_path)
    summary = Summary.of(summary) if summary is not None else summary_mod.build(records)
    page = render(records, summary, Path(report_dir) if report_dir else out_path.parent, note)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out_path)
    return out_path


# -- the page ---------------------------------------------------------------------------------------
@dataclass
class _Step:
    n: object
    score: Score | None
    first: str
    thought: str
    action: str
    observation: str
    timing: str | None


@dataclass
class _Run:
    record: RunRecord
    head: str
    weak: bool
    problem: str
    steps: list[_Step] = field(default_factory=list)
    unmatched: list[Score] = field(default_factory=list)  # scores without a trajectory step


def render(records: list[RunRecord], summary: Summary, report_dir: Path, note: str = "") -> str:
    from . import aggregate_html, cost, plots

    latest = selection.latest_runs(records)
    colour = plots.colours(list(summary.aup[KINDS[0]]))
    agents = sorted({r.agent for r in latest})
    meta = (f"{len(summary.tasks)} tasks, {len(agents)} agents ({', '.join(agents)}), {len(latest)} runs, "
            f"up to {summary.k} seed(s) each; session {', '.join(summary.sessions)}; written {summary.created}")
    first = summary.aup[KINDS[0]]
    why = (f"Intervals: percentile bootstrap over seeds ({summary.bootstrap.n} resamples of each task and agent's "
           f"{summary.k} runs, with replacement; best of k and AUP recomputed each time, tau_max fixed)."
           if summary.k > 1 else "One run per task and agent: the bootstrap over seeds has nothing to resample "
                                 "(run with --seeds N for intervals).")
    tasks = [{"name": task, "info": info, "better": Metric.of(info.direction).word,
              "agents": sorted(info.agents.items()),
              "plot": plots.task_steps(task, info, [r for r in latest if r.task == task], colour)}
             for task, info in sorted(summary.tasks.items())]
    return _template().render(
        s=summary, meta=meta, note=note, isolation=_isolation(summary.isolation or trust.of_records(latest)),
        kinds=KINDS, titles=TITLES, recorded=RECORDED, conf=f"{summary.bootstrap.confidence:.0%}", why=why,
        methods=sorted(first, key=lambda m: (-first[m], m)), profiles=plots.profiles(summary), tasks=tasks,
        runs=[_run(r, report_dir) for r in latest], css=CSS, js=JS, st=aggregate_html.context(summary.stats, colour),
        cost_plot=cost.plot(summary.cost))


@lru_cache(maxsize=1)
def _template():
    import jinja2  # here, not at import: collecting tests stays light

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(num=_num, ci=_ci, duration=_duration, slug=_slug, score=_score, dumps=json.dumps,
                       distinct=lambda xs: "; ".join(sorted(set(xs))),
                       counts=lambda xs: ", ".join(f"{x} x{xs.count(x)}" for x in sorted(set(xs))),
                       infra=infra_cell)
    return env.get_template("report.html.j2")


def _isolation(i: trust.IsolationInfo) -> dict:
    """The sandbox's isolation, under the title; a weaker mode than its backend's best is a warning."""
    warning = trust.warning(i)
    if warning:
        text = warning
    elif i.get("mode"):
        text = f"Isolation: {i['mode']} (sandbox {i.get('backend')}): {i.get('description', '')}"
    else:
        text = f"Isolation: not recorded in these runs (sandbox {i.get('backend')})"
    if i.get("required"):
        text += f". Required: {i['required']} or better (--mlgym-min-isolation)."
    return {"text": text, "weak": bool(warning)}


def _run(r: RunRecord, report_dir: Path) -> _Run:
    steps, problem = _trajectory(r, report_dir)
    scored = {s.step: s for s in r.scores}
    head = (f"{r.task} / {r.agent} / seed {r.seed}: {r.status}, best attempt {_num(r.best_attempt)}, best submission "
            f"{_num(r.best_submission)}, {r.steps} steps, {_duration(r.wall_s)}, ${r.cost_usd:.4f}, "
            f"isolation {r.isolation or 'not recorded'}"
            + (f" ({r.reason})" if r.reason else ""))
    run = _Run(r, head, trust.info(r.sandbox, r.isolation)["weaker"], problem)
    for st in steps:
        n = st.get("step")
        action = _cut(str(st.get("action", "")))
        thought = st.get("thought")
        run.steps.append(_Step(
            n=n, score=scored.pop(n, None) if isinstance(n, int) else None,
            first=(action.strip().splitlines()[0] if action.strip() else "")[:160],
            thought=_cut(str(thought)) if thought else "", action=action,
            observation=_cut(str(st.get("observation", ""))),
            timing=f"reward {_num(st.get('reward'))}, t = {_num(st.get('t'))} s" if "reward" in st else None))
    run.unmatched = list(scored.values())  # e.g. an autosubmission at the step limit
    return run


def _trajectory(r: RunRecord, report_dir: Path) -> tuple[list[dict], str]:
    """The steps of a run's saved trajectory, or why there are none."""
    if not r.trajectory:
        return [], "no trajectory was saved for this run"
    path = report_dir / r.trajectory
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return [], f"trajectory {r.trajectory}: {exc.strerror or exc}"
    steps = []
    for line in lines:
        try:
            step = json.loads(line)
        except ValueError:
            continue  # a torn line
        if isinstance(step, dict):
            steps.append(step)
    return steps, ""


# -- formatting -------------------------------------------------------------------------------------
def _cut(text: str, n: int = FIELD_CHARS) -> str:
    return text if len(text) <= n else f"{text[:n // 2]}\n[... {len(text) - n} characters cut ...]\n{text[-n // 2:]}"


def _num(x) -> str:
    return "-" if x is None else f"{x:.4g}" if isinstance(x, (int, float)) else str(x)


def _score(s) -> str:
    return _num(s.score) if s.score is not None else f"invalid ({s.reason})" if s.reason else "no score"


def _ci(ci) -> str:
    return "-" if not ci else f"{ci[0]:.3f} – {ci[1]:.3f}"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", str(text))


# the page's own style and its step filter (it reads textContent only: no markup is made; ``#q=text`` in
# the address pre-fills it); the only CSS and JS on the page, inlined by the template
CSS = (TEMPLATES / "report.css").read_text(encoding="utf-8")
JS = (TEMPLATES / "report.js").read_text(encoding="utf-8")
