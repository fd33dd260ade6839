"""``report.html``: one self-contained page (inline CSS, PNG plots as data URIs, a few lines of
inline JS, nothing fetched) with the AUP table and its bootstrap intervals, AUP@j, the
performance profiles, every task's scores and score-over-steps plot, and every run's trajectory.

Every piece of text that comes from a record or a trajectory goes through ``html.escape``: the
agent is untrusted and its actions, thoughts and observations must never become markup.

    python -m pytest_mlgym report reports/results.jsonl [--out FILE] [--session ID ...]
"""
from __future__ import annotations

import json
import os
import re
from html import escape
from pathlib import Path

from .. import selection
from ..metric import Metric
from ..results import ResultsStore, RunRecord
from . import summary as summary_mod
from . import trust
from .summary import KINDS, RECORDED

FIELD_CHARS = 8000  # an action, thought or observation longer than this is cut to its head and tail
TITLES = {"best_attempt": "best attempt", "best_submission": "best submission",
          "oracle_best_attempt": "oracle best attempt (test-selected)"}


def main(results_path: Path, out_path: Path, sessions: list[str] | None = None) -> Path:
    """Write the report of ``results_path``'s runs to ``out_path``. Without ``sessions`` the report
    shows the last session of the file (the one of its last record: the latest pytest run, the
    same records as its ``summary.json``); give sessions to show (and compare) others."""
    records = ResultsStore(results_path).read()
    known = selection.sessions(records)
    if not records:
        raise SystemExit(f"{results_path}: no runs recorded")
    chosen = list(sessions) if sessions else [selection.last_session(records)]
    missing = [s for s in chosen if s not in known]
    if missing:
        raise SystemExit(f"{results_path}: no session {', '.join(missing)}; sessions: {', '.join(known)}")
    others = len(known) - len(set(chosen))
    note = (f"{results_path.name} holds {len(known)} sessions; this page shows {', '.join(chosen)} "
            "(python -m pytest_mlgym report --session ID picks others)") if others else ""
    return write(selection.in_sessions(records, chosen), out_path, report_dir=results_path.parent, note=note)


def write(records: list[RunRecord], out_path: Path, report_dir: Path | None = None,
          summary: dict | None = None, note: str = "") -> Path:
    """Write the report of ``records`` to ``out_path`` atomically and return its path. Trajectory
    paths are relative to ``report_dir`` (default: the folder of ``out_path``); ``summary`` is
    ``summary.build(records)``, computed when not given."""
    out_path = Path(out_path)
    summary = summary if summary is not None else summary_mod.build(records)
    page = render(records, summary, Path(report_dir) if report_dir else out_path.parent, note)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out_path)
    return out_path


# -- the page ---------------------------------------------------------------------------------------
def render(records: list[RunRecord], summary: dict, report_dir: Path, note: str = "") -> str:
    from . import plots

    latest = selection.latest_runs(records)
    colour = plots.colours(list(summary["aup"][KINDS[0]]))
    agents = sorted({r.agent for r in latest})
    meta = (f"{len(summary['tasks'])} tasks, {len(agents)} agents ({', '.join(agents)}), {len(latest)} runs, "
            f"up to {summary['k']} seed(s) each; session {', '.join(summary['sessions'])}; written {summary['created']}")
    body = [f"<h1>pytest-mlgym report</h1><p class=meta id=about>{_e(meta)}</p>",
            _isolation(summary.get("isolation") or trust.of_records(latest)),
            f"<p class=note id=sessions>{_e(note)}</p>" if note else "", _interrupted(summary.get("interrupted")),
            "<nav><a href='#aup'>AUP</a> · <a href='#profiles'>profiles</a> · <a href='#tasks'>tasks</a> · "
            "<a href='#runs'>trajectories</a></nav>",
            _aup_section(summary), _profiles_section(summary, plots.profiles(summary)),
            _tasks_section(summary, latest, colour, plots), _runs_section(latest, report_dir)]
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>pytest-mlgym report</title>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body>{''.join(body)}<script>{JS}</script></body></html>\n")


def _interrupted(counts: dict | None) -> str:
    if not counts:
        return ""
    return (f"<p class=note id=interrupted>Interrupted: {counts.get('finished', 0)} runs finished, "
            f"{counts.get('interrupted', 0)} interrupted and {counts.get('not_started', 0)} not started have no "
            f"record here; the same command with --mlgym-resume runs them.</p>")


def _isolation(i: dict) -> str:
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
    return f"<p class='isolation{' weak' if warning else ''}' id=isolation>{_e(text)}</p>"


def _aup_section(summary: dict) -> str:
    aup, ci, k, boot = summary["aup"], summary.get("aup_ci", {}), summary["k"], summary.get("bootstrap", {})
    conf = f"{boot.get('confidence', 0.95):.0%}"
    methods = sorted(aup[KINDS[0]], key=lambda m: (-aup[KINDS[0]][m], m))
    head = "".join(f"<th>{TITLES[kind]} AUP@{k}</th><th>{conf} CI</th>" for kind in KINDS)
    rows = []
    for m in methods:
        cells = "".join(f"<td class=num>{aup[kind][m]:.3f}</td><td class=ci>{_ci(ci.get(kind, {}).get(m))}</td>"
                        for kind in KINDS)
        rows.append(f"<tr data-method='{_e(m)}'><th>{_e(m)}</th>{cells}</tr>")
    why = (f"Intervals: percentile bootstrap over seeds ({boot.get('n', '?')} resamples of each task and agent's "
           f"{k} runs, with replacement; best of k and AUP recomputed each time, tau_max fixed)."
           if k > 1 else "One run per task and agent: the bootstrap over seeds has nothing to resample "
                         "(run with --seeds N for intervals).")
    at = summary.get("aup_at", {})
    j_head = "".join(f"<th>{TITLES[kind]} AUP@{j}</th>" for kind in KINDS for j in at)
    j_rows = "".join(f"<tr data-method='{_e(m)}'><th>{_e(m)}</th>"
                     + "".join(f"<td class=num>{at[j][kind][m]:.3f}</td>" for kind in KINDS for j in at)
                     + "</tr>" for m in methods)
    return (f"<section id=aup><h2>AUP (area under the performance profile; tau_max {summary['tau_max']:g}; "
            f"higher is better)</h2><table id=aup-table><thead><tr><th>method</th>{head}</tr></thead><tbody>"
            f"{''.join(rows)}</tbody></table><p class=help>{_e(why)} {_e(RECORDED)} scores the baselines recorded "
            f"in each task.yaml. Best attempt: the best score of any validate/submit of a run; best submission: "
            f"the last scored artefact; each the best of the runs (AUP@k).</p>"
            f"<h3>AUP@j: the best of each task and agent's first j seeds</h3><table id=aup-at-k><thead><tr>"
            f"<th>method</th>{j_head}</tr></thead><tbody>{j_rows}</tbody></table></section>")


def _profiles_section(summary: dict, images: dict[str, str]) -> str:
    imgs = "".join(f"<figure><img id='profile-{kind}' class=profile alt='performance profiles, {TITLES[kind]}' "
                   f"src='{src}'><figcaption>{TITLES[kind]}: rho(tau) is the fraction of tasks on which a method "
                   f"is within a factor 10^tau of the best</figcaption></figure>" for kind, src in images.items())
    return f"<section id=profiles><h2>Performance profiles</h2><div class=row>{imgs}</div></section>"


def _tasks_section(summary: dict, latest: list[RunRecord], colour: dict, plots) -> str:
    parts = ["<section id=tasks><h2>Tasks</h2>"]
    for task, info in sorted(summary["tasks"].items()):
        runs = [r for r in latest if r.task == task]
        rows = [f"<tr class=recorded><th>{_e(RECORDED)}</th><td class=num>{_num(info['baseline'])}</td>"
                f"<td class=num>{_num(info['baseline'])}</td><td></td><td></td><td></td><td></td></tr>"]
        for agent, a in sorted(info["agents"].items()):
            status = ", ".join(f"{s} x{a['statuses'].count(s)}" for s in sorted(set(a["statuses"])))
            reasons = "; ".join(sorted(set(a["reasons"])))
            rows.append(f"<tr data-agent='{_e(agent)}'><th>{_e(agent)}</th><td class=num>{_num(a['best_attempt'])}</td>"
                        f"<td class=num>{_num(a['best_submission'])}</td><td class=num>{a['passed']}/{a['runs']}</td>"
                        f"<td class=status title='{_e(reasons)}'>{_e(status)}</td><td class=num>${a['cost_usd']:.4f}</td>"
                        f"<td class=num>{_duration(a['wall_s'])}</td></tr>")
        plot = plots.task_steps(task, info, runs, colour)
        parts.append(
            f"<section class=task id='task-{_slug(task)}' data-task='{_e(task)}'><h3>{_e(task)}</h3>"
            f"<p class=meta>{_e(info['metric'])} ({Metric.of(info['direction']).word} is better), "
            f"size {_e(info['size'])}, baseline {_num(info['baseline'])}</p><div class=row>"
            f"<table class=task-table><thead><tr><th>method</th><th>best attempt</th><th>best submission</th>"
            f"<th>passed</th><th>status</th><th>cost</th><th>wall time</th></tr></thead><tbody>{''.join(rows)}"
            f"</tbody></table><img class=steps-plot alt='{_e(task)}: score over steps' src='{plot}'></div></section>")
    parts.append("</section>")
    return "".join(parts)


def _runs_section(latest: list[RunRecord], report_dir: Path) -> str:
    parts = ["<section id=runs><h2>Trajectories</h2><p class=search><input id=q type=search "
             "placeholder='filter steps: action, thought, observation, task, agent…' autocomplete=off> "
             "<span id=qcount></span></p>"]
    for r in latest:
        parts.append(_run(r, report_dir))
    parts.append("</section>")
    return "".join(parts)


def _run(r: RunRecord, report_dir: Path) -> str:
    steps, problem = _trajectory(r, report_dir)
    scored = {s.step: s for s in r.scores}
    items = []
    for st in steps:
        n = st.get("step")
        s = scored.pop(n, None) if isinstance(n, int) else None
        action = _cut(str(st.get("action", "")))
        first = action.strip().splitlines()[0] if action.strip() else ""
        badge = f"<span class='badge {_e(s.kind)}'>{_e(s.kind)}: {_score(s)}</span> " if s else ""
        thought = st.get("thought")
        items.append(
            f"<li class='step{' scored' if s else ''}' data-step='{_e(str(n))}'><details><summary>"
            f"<span class=n>{_e(str(n))}</span> {badge}<code>{_e(first[:160])}</code></summary>"
            + (f"<div class=thought>{_e(_cut(str(thought)))}</div>" if thought else "")
            + f"<pre class=action>{_e(action)}</pre><pre class=obs>{_e(_cut(str(st.get('observation', ''))))}</pre>"
            + (f"<p class=t>reward {_e(_num(st.get('reward')))}, t = {_e(_num(st.get('t')))} s</p>" if "reward" in st else "")
            + "</details></li>")
    for s in scored.values():  # scores without a trajectory step (an autosubmission at the step limit)
        items.append(f"<li class='step scored' data-step='{s.step}'><details><summary><span class=n>{s.step}</span> "
                     f"<span class='badge {_e(s.kind)}'>{_e(s.kind)}: {_score(s)}</span></summary>"
                     f"<pre class=obs>{_e(json.dumps(s.metrics))}</pre></details></li>")
    head = (f"{r.task} / {r.agent} / seed {r.seed}: {r.status}, best attempt {_num(r.best_attempt)}, best submission "
            f"{_num(r.best_submission)}, {r.steps} steps, {_duration(r.wall_s)}, ${r.cost_usd:.4f}, "
            f"isolation {r.isolation or 'not recorded'}"
            + (f" ({r.reason})" if r.reason else ""))
    weak = " weak" if trust.info(r.sandbox, r.isolation)["weaker"] else ""
    return (f"<details class='run{' passed' if r.passed else ' failed'}{weak}' "
            f"id='run-{_slug(r.task)}-{_slug(r.agent)}-{r.seed}' data-isolation='{_e(r.isolation or '')}' "
            f"data-task='{_e(r.task)}' data-agent='{_e(r.agent)}' data-seed='{r.seed}'><summary>{_e(head)}</summary>"
            + (f"<p class=note>{_e(problem)}</p>" if problem else "")
            + f"<ol class=steps>{''.join(items)}</ol></details>")


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
def _e(text) -> str:
    return escape(str(text), quote=True)


def _cut(text: str, n: int = FIELD_CHARS) -> str:
    return text if len(text) <= n else f"{text[:n // 2]}\n[... {len(text) - n} characters cut ...]\n{text[-n // 2:]}"


def _num(x) -> str:
    return "-" if x is None else f"{x:.4g}" if isinstance(x, (int, float)) else str(x)


def _score(s) -> str:
    return _num(s.score) if s.score is not None else f"invalid ({_e(s.reason)})" if s.reason else "no score"


def _ci(ci) -> str:
    return "-" if not ci else f"{ci[0]:.3f} – {ci[1]:.3f}"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", str(text))


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#222}
h1{margin:.2em 0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}h3{margin:.3em 0}
.meta,.help{color:#555}.isolation{padding:4px 8px;background:#eef6ee;border-left:4px solid #2a7}
.isolation.weak{background:#fde8e8;border:2px solid #c00;color:#900;font-weight:700}
details.run.weak>summary::after{content:" (weak isolation)";color:#c00}.note{background:#fff6d6;padding:4px 8px}nav a{color:#1f5fa8}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
thead th{background:#f4f4f4}td.num,td.ci{text-align:right;font-variant-numeric:tabular-nums}td.ci{color:#666}
td.status{white-space:nowrap}tr.recorded{color:#555;font-style:italic}.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
figure{margin:0}figcaption{color:#666;font-size:12px;max-width:560px}img.profile{max-width:560px}
section.task .row{flex-wrap:nowrap}img.steps-plot{width:42%;min-width:0}section.task{border-top:1px dashed #ddd;padding-top:6px;margin-top:10px}
#q{width:420px;padding:5px 8px;font-size:14px}#qcount{color:#666;margin-left:8px}
details.run{border:1px solid #ddd;border-radius:4px;margin:4px 0;padding:2px 8px}
details.run>summary{cursor:pointer;font-weight:600}details.run.failed>summary{color:#a12}
ol.steps{list-style:none;padding-left:6px;margin:4px 0}li.step{border-left:3px solid transparent;padding-left:6px}
li.step.scored{border-left-color:#2a7;background:#effaf3}li.step summary{cursor:pointer}
span.n{display:inline-block;min-width:2.2em;color:#888;text-align:right;margin-right:6px}
.badge{border-radius:3px;padding:0 5px;font-size:12px;background:#2a7;color:#fff}.badge.submit,.badge.autosubmit{background:#1f5fa8}
pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;padding:6px;margin:4px 0;max-height:420px;overflow:auto}
pre.action{background:#eef3fb}.thought{color:#444;font-style:italic;white-space:pre-wrap;margin:4px 0}
p.t{color:#888;font-size:12px;margin:0 0 6px}[hidden]{display:none!important}
"""

# The filter: steps whose text (or whose run's heading) holds the query stay; runs without such a
# step hide. ``#q=text`` in the address pre-fills it. It reads textContent only: no markup is made.
JS = """
(function(){
var q=document.getElementById('q'),count=document.getElementById('qcount');
function filter(){
  var text=q.value.trim().toLowerCase(),shown=0,total=0,runsShown=0;
  document.querySelectorAll('details.run').forEach(function(run){
    var head=run.querySelector('summary').textContent.toLowerCase().indexOf(text)>=0,any=false;
    run.querySelectorAll('li.step').forEach(function(st){
      total++;var own=text&&st.textContent.toLowerCase().indexOf(text)>=0,hit=!text||head||own;
      st.hidden=!hit;if(hit){shown++;any=true;}
      if(own){st.querySelector('details').open=true;}
    });
    run.hidden=!!text&&!any&&!head;if(!run.hidden){runsShown++;}
    if(text){run.open=!run.hidden;}
  });
  count.textContent=text?(shown+' of '+total+' steps in '+runsShown+' runs match'):(total+' steps');
}
var m=location.hash.match(/^#q=(.*)$/);
if(m){try{q.value=decodeURIComponent(m[1]);}catch(e){q.value=m[1];}}
q.addEventListener('input',filter);filter();
})();
"""
