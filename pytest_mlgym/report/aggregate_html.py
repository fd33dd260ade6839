"""The report's aggregate-statistics section (``stats.html.j2``): the mean/IQM table with intervals,
the per-task mean over seeds and the AUP@j curves with their bands (matplotlib, as :mod:`.plots`)."""
from __future__ import annotations

from .aggregate import Estimate, Stats, fmt
from .plots import TITLES, _figure, _label, _png


def context(stats: Stats, colour: dict[str, str]) -> dict:
    """What the template shows: rows of text cells (every cell via ``aggregate.fmt``) and the plot."""
    kinds = stats.kinds
    agents = [{"name": a, "tasks": row.tasks, "seeds": row.seeds,
               "cells": [fmt(getattr(row, s).get(k)) for s in ("mean", "iqm") for k in kinds]}
              for a, row in sorted(stats.agents.items(), key=lambda kv: -_value(kv[1].iqm.get(kinds[0])))]
    tasks = [{"task": t, "agent": a, "runs": row.runs,
              "cells": [fmt(getattr(row, s).get(k), 4) for s in ("raw", "normalised") for k in kinds]}
             for t, by in sorted(stats.tasks.items()) for a, row in sorted(by.items())]
    return {"agents": agents, "tasks": tasks, "kinds": [TITLES[k] for k in kinds], "unanchored": stats.unanchored,
            "plot": aup_at_plot(stats, colour) if stats.aup_at else None,
            "conf": f"{stats.confidence:.0%}", "rule": stats.rule}


def _value(e: Estimate | None) -> float:
    return float("-inf") if e is None else e.value


def aup_at_plot(stats: Stats, colour: dict[str, str]) -> str:
    """AUP@j over j = 1..k per method, a band for each j's interval; one panel per score kind."""
    kinds = list(stats.aup_at)
    fig = _figure(5.2 * len(kinds), 3.4)
    for i, kind in enumerate(kinds):
        ax = fig.add_subplot(1, len(kinds), i + 1)
        for method, curve in sorted(stats.aup_at[kind].items()):
            js = [e.n for e in curve]
            c = colour.get(method, "#333333")
            ax.plot(js, [e.value for e in curve], marker="o", color=c, label=_label(method))
            if all(e.low is not None and e.high is not None for e in curve):
                ax.fill_between(js, [e.low for e in curve], [e.high for e in curve], color=c, alpha=0.18, lw=0)
        ax.set(xlabel="j (runs per task and agent)", ylabel="AUP@j", title=f"AUP@j, {TITLES[kind]}")
        ax.set_xticks(sorted({e.n for curve in stats.aup_at[kind].values() for e in curve}))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    return _png(fig)
