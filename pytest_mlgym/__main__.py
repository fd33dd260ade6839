"""``python -m pytest_mlgym``: work with recorded runs offline, and author tasks.

    python -m pytest_mlgym report reports/results.jsonl [--out reports/report.html] [--session ID]
    python -m pytest_mlgym export --format sft|inspect [reports/results.jsonl] [--out DIR]
    python -m pytest_mlgym check-task DIR [--quick] [--size lite]    # the generic checks of a task folder
    python -m pytest_mlgym measure DIR [--size lite] [--runs N]       # baseline scores into task.yaml
    python -m pytest_mlgym measure DIR --reference                   # reference anchors into task.yaml
    python -m pytest_mlgym new-task ID [--dir tasks]                  # a new task folder that passes check-task
    python -m pytest_mlgym import-mlgym MLGYM_CHECKOUT TASK_CONFIG [--out DIR]   # a task of an MLGym checkout
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .authoring import check, measure, mlgym_import, scaffold

AUTHORING = {"check-task": check, "measure": measure, "new-task": scaffold, "import-mlgym": mlgym_import}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_mlgym", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="write the HTML report of recorded runs")
    rep.add_argument("results", type=Path, nargs="?", default=Path("reports/results.jsonl"))
    rep.add_argument("--out", type=Path, default=None, help="default: report.html beside the results")
    rep.add_argument("--session", action="append", default=None, help="only these sessions (repeatable)")
    exp = sub.add_parser("export", help="export trajectories for fine-tuning (sft) or for Inspect (inspect)")
    exp.add_argument("results", type=Path, nargs="?", default=Path("reports/results.jsonl"))
    exp.add_argument("--format", choices=("sft", "inspect"), required=True)
    exp.add_argument("--out", type=Path, default=None, help="default: <results folder>/export/<format>")
    exp.add_argument("--session", action="append", default=None, help="only these sessions (repeatable)")
    for module in AUTHORING.values():
        module.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command in AUTHORING:
        return AUTHORING[args.command].main(args)
    if not args.results.is_file():
        parser.exit(2, f"{parser.prog} {args.command}: {args.results}: no such results file\n")
    if args.command == "report":
        from .report import html

        out = html.main(args.results, args.out or args.results.parent / "report.html", sessions=args.session)
    else:
        from . import export

        out = export.main(args.results, args.format, args.out or args.results.parent / "export" / args.format,
                          sessions=args.session)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
