"""The report's plots, drawn with matplotlib (Agg) and returned as ``data:image/png;base64`` URIs.

matplotlib is imported inside the functions that draw, never when this module is imported, so
collecting tests stays light.
"""
from __future__ import annotations

import base64
import io

from .. import scoring
from ..results import RunRecord
from .summary import KINDS, RECORDED, Summary, TaskSummary

TITLES = {"best_attempt": "best attempt", "best_submission": "best submission",
          "oracle_best_attempt": "oracle best attempt (test-selected)"}


def colours(methods: list[str]) -> dict[str, str]:
    """One colour per method, stable across every plot of a report; the recorded baseline is grey."""
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
               "#bcbd22", "#7f7f7f"]
    agents = sorted(m for m in methods if m != RECORDED)
    out = {m: palette[i % len(palette)] for i, m in enumerate(agents)}
    out[RECORDED] = "#555555"
    return out


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure  # a bare Figure: no pyplot state, safe in any thread

    return Figure(figsize=(width, height), dpi=100)


def _label(text: str) -> str:
    """A name as matplotlib shows it literally (a ``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def profiles(summary: Summary) -> dict[str, str]:
    """The performance profiles ``rho(tau)`` of every method, one image per score kind."""
    aup = summary.aup  # the methods AUP scores (summary.INFRA_RULE leaves unscored agents out)
    tasks = summary.tasks
    directions = {t: v.direction for t, v in tasks.items()}
    baselines = {t: v.baseline for t, v in tasks.items()}
    methods = list(aup[KINDS[0]])
    colour = colours(methods)
    out: dict[str, str] = {}
    for kind in KINDS:
        scores = {t: {a: getattr(row, kind) for a, row in v.agents.items() if a in aup[kind]}
                  for t, v in tasks.items()}
        tau, rho = scoring.profile(scores, directions, baselines, tau_max=summary.tau_max, baseline_name=RECORDED)
        fig = _figure(5.6, 3.6)
        ax = fig.add_subplot()
        for m in sorted(rho, key=lambda m: (-aup[kind][m], m)):
            ours = m == RECORDED  # dashed and on top, so an agent that ties it still shows both
            ax.plot(tau, rho[m], drawstyle="steps-post", color=colour[m], lw=1.5 if ours else 2.2,
                    ls="--" if ours else "-", zorder=3 if ours else 2, label=f"{_label(m)} (AUP {aup[kind][m]:.3f})")
        ax.set(xlabel=r"$\tau$ (log$_{10}$ of the performance ratio)", ylabel=r"$\rho(\tau)$: fraction of tasks",
               title=f"Performance profiles, {TITLES[kind]} @{summary.k}", xlim=(0, summary.tau_max),
               ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        out[kind] = _png(fig)
    return out


def task_steps(task: str, info: TaskSummary, runs: list[RunRecord], colour: dict[str, str]) -> str:
    """Score over steps of each run of one task (validate/submit); the baseline is a dashed line."""
    fig = _figure(5.2, 2.6)
    ax = fig.add_subplot()
    styles = ["-", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1))]
    for r in sorted(runs, key=lambda r: (r.agent, r.seed)):
        pts = [(s.step, s.score) for s in r.scores if s.score is not None]
        if not pts:
            continue
        xs, ys = zip(*pts)
        ax.plot(xs, ys, marker="o", ms=3, lw=1.2, color=colour.get(r.agent, "#000000"),
                ls=styles[r.seed % len(styles)], label=f"{_label(r.agent)} s{r.seed}")
        subs = [(s.step, s.score) for s in r.scores if s.score is not None and s.kind != "validate"]
        if subs:
            ax.plot(*zip(*subs), marker="*", ms=10, ls="none", color=colour.get(r.agent, "#000000"))
    ax.axhline(info.baseline, color=colour[RECORDED], ls="--", lw=1, label="baseline")
    ax.set(xlabel="step", ylabel=_label(info.metric), title=f"{_label(task)}: score over steps ({info.direction}; "
                                                        f"* = submission)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="best")
    return _png(fig)
