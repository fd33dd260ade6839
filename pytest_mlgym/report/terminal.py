"""The end-of-run table in the terminal: per task and agent, then AUP per agent.

Every cell and line goes through ``text.clean``: statuses, reasons and names may hold agent text.
"""
from __future__ import annotations

from pathlib import Path

from .aggregate import fmt
from .summary import RECORDED, Summary
from .text import clean


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4g}"


def lines(summary: Summary | dict) -> list[str]:
    summary = Summary.of(summary)
    rows = [("task", "agent", "best attempt", "best submission", "baseline", "passed", "status", "infra failures")]
    for task, t in sorted(summary.tasks.items()):
        for agent, a in sorted(t.agents.items()):
            rows.append((task, agent, _fmt(a.best_attempt), _fmt(a.best_submission),
                         f"{_fmt(t.baseline)} ({t.metric}, {t.direction})",
                         f"{a.passed}/{a.runs}", ",".join(sorted(set(a.statuses))), infra_cell(a.infra)))
    out = _table(rows)
    aup = summary.aup
    methods = sorted(aup["best_attempt"], key=lambda m: (-aup["best_attempt"][m], m))
    out += ["", f"AUP@{summary.k} (tau_max {summary.tau_max:g}; higher is better)"]
    oracle = aup.get("oracle_best_attempt", {})
    out += _table([("method", "best attempt", "best submission", "oracle (test-selected)")] +
                  [(m, f"{aup['best_attempt'][m]:.3f}", f"{aup['best_submission'][m]:.3f}",
                    f"{oracle[m]:.3f}" if m in oracle else "-") for m in methods])
    out += stats_lines(summary)
    if note := summary.infra.note():
        out.append(f"note: {note} (--mlgym-resume runs them again)")
    return out


def stats_lines(summary: Summary) -> list[str]:
    """One line per agent: mean and IQM of the normalised best submission, with intervals."""
    st = summary.stats
    if not st.agents:
        return []
    out = ["", f"normalised best submission (0 = baseline, 1 = reference; {st.confidence:.0%} intervals)"]
    for agent, row in sorted(st.agents.items()):
        out.append(f"  {agent}: IQM {fmt(row.iqm.get('best_submission'))}, mean {fmt(row.mean.get('best_submission'))}"
                   f" ({row.tasks} tasks x {row.seeds} seed{'s' * (row.seeds != 1)})")
    if st.unanchored:
        out.append(f"  left out (no reference anchor): {', '.join(st.unanchored)}")
    return out


def infra_cell(classes: dict[str, int]) -> str:
    """A row's runs the infrastructure cut short, by error class: ``2 (RateLimitError)``; ``-`` if none."""
    if not classes:
        return "-"
    return f"{sum(classes.values())} ({', '.join(f'{c} x{n}' if n > 1 else c for c, n in sorted(classes.items()))})"


def _table(rows: list[tuple]) -> list[str]:
    rows = [tuple(clean(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    def fmt(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    return [fmt(rows[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows[1:]]


def render(summary: Summary, tr, report_dir: Path) -> None:
    tr.write_sep("=", "mlgym results")
    for line in lines(summary):
        tr.write_line(clean(line))
    tr.write_line(f"{RECORDED} scores the baselines recorded in task.yaml. "
                  f"Records: {report_dir / 'results.jsonl'}; summary: {report_dir / 'summary.json'}")


def interrupted(counts: dict, tr) -> None:
    """After Ctrl-C: how many runs the report above holds, and how many ``--mlgym-resume`` would run."""
    def runs(n):
        return f"{n} run{'s' * (n != 1)}"
    line = f"{runs(counts['finished'])} finished and recorded; {runs(counts['interrupted'])} interrupted"
    if counts["not_started"]:
        line += f" and {counts['not_started']} not started"
    if counts["interrupted"] + counts["not_started"]:
        line += ", not recorded: the same command with --mlgym-resume runs them"
    tr.write_sep("=", "mlgym: interrupted")
    tr.write_line(line)


def comparison_lines(c: dict) -> list[str]:
    """``--mlgym-compare``: the per-task diff (best submission) and each agent's AUP, stored and now."""
    out = [f"stored run: {c['stored']} (session {c['stored_session']}, {c['stored_runs']} runs); "
           f"compared on {len(c['tasks'])} common task{'s' * (len(c['tasks']) != 1)}, agents matched by name"]
    if c["rows"]:
        out += _table([("task", "agent", "stored", "now", "change", "runs (stored/now)")] +
                      [(r["task"], r["agent"], _fmt(r["old"]), _fmt(r["new"]), r["change"],
                        "/".join(map(str, r["runs"]))) for r in c["rows"]])
    if c["aup"]:
        ks = sorted(set(c["k"].values()))
        out += ["", f"AUP@{'/'.join(map(str, ks))} on the common tasks (tau_max {c['tau_max']:g}; each agent's stored "
                    f"and current runs scored in one performance profile)"]
        rows = [("agent", "best submission: stored", "now", "change", "best attempt: stored", "now", "change")]
        for a, v in sorted(c["aup"].items()):
            s, t = v["best_submission"], v["best_attempt"]
            rows.append((a, f"{s['old']:.3f}", f"{s['new']:.3f}", f"{s['change']:+.3f}",
                         f"{t['old']:.3f}", f"{t['new']:.3f}", f"{t['change']:+.3f}"))
        out += _table(rows)
    out += [f"note: {n}" for n in c["notes"]]
    return out


def comparison(c: dict, tr) -> None:
    tr.write_sep("=", "mlgym comparison with a stored run")
    for line in comparison_lines(c):
        tr.write_line(clean(line))


def section(title: str, lines: list[str], tr) -> None:
    tr.write_sep("=", title)
    for line in lines:
        tr.write_line(clean(line))


def gates(results: list, tr) -> None:
    """One line per gate: PASSED or FAILED, the flag, and why."""
    failed = any(not g.passed for g in results)
    tr.write_sep("=", "mlgym gates", red=failed, green=not failed)
    for g in results:
        tr.write_line(clean(g.line), red=not g.passed, green=g.passed)


def isolation(warning: str, tr) -> None:
    """The isolation warning of the header, again at the end, where it is not scrolled away."""
    tr.write_sep("=", "mlgym: WEAK ISOLATION", red=True, bold=True)
    tr.write_line(clean(warning), red=True, bold=True)
