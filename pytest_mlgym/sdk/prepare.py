"""The ``prepare.py`` entry point: make a size's data, or say in one line what is missing.

    from pytest_mlgym.sdk import prepare

    def build(ctx: prepare.Context) -> str:
        src = ctx.data_dir / "train.csv"          # $MLGYM_DATA_DIR/<task-id>/, full size only
        if ctx.size == "full" and not src.exists():
            raise prepare.DataMissing(f"put Kaggle's train.csv at {src}")
        ...write ctx.public / ..., ctx.private / ...
        return "2047 train, 439 test rows"        # one line for the log

    if __name__ == "__main__":
        prepare.run(build)

``python prepare.py --size lite|full --out OUT`` (cwd = the task folder). :class:`DataMissing`
prints its line on stderr and exits 3, which the harness turns into a skip that says it.
Deterministic: the same bytes on every run. Options of a task's own (for its tests; the harness
passes none) are declared to :func:`run` and read from ``ctx.options``::

    prepare.run(build, options={"count": (int, "only the first COUNT instances")})
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

DATA_MISSING_EXIT = 3


class DataMissing(Exception):
    """The published data for this size is not installed: say exactly what to put where."""


@dataclass(frozen=True)
class Context:
    task_id: str
    size: str
    out: Path
    task_dir: Path
    options: dict = field(default_factory=dict)  # the task's own options (run(options=...)); None when not given

    @property
    def public(self) -> Path:  # copied into the workspace at data_dir, read-only for the agent
        return self.out / "public"

    @property
    def private(self) -> Path:  # hidden answers: only the evaluator sees them
        return self.out / "private"

    @property
    def data_dir(self) -> Path:
        """Where a user puts the published data: ``$MLGYM_DATA_DIR/<task-id>/``."""
        root = os.environ.get("MLGYM_DATA_DIR")
        if not root:
            raise DataMissing(f"set MLGYM_DATA_DIR to a folder holding {self.task_id}/ "
                              f"(see tasks/{self.task_id}/workspace/README.md for its layout)")
        return Path(root) / self.task_id

    def import_shared(self, name: str):
        """A ``.py`` file task.yaml declares ``shared`` (the task's workspace copy), as a module."""
        from .evaluator import import_path, shared_path

        return import_path(shared_path(self.task_dir, name))


def run(build: Callable[[Context], str | None], sizes: tuple[str, ...] = ("lite", "full"),
        options: dict[str, tuple[type, str]] | None = None) -> None:
    """``options``: ``{name: (type, help)}``, optional ``--name VALUE`` arguments of the task's own."""
    ap = argparse.ArgumentParser(description="Make this task's data for one size.")
    ap.add_argument("--size", required=True, choices=sizes)
    ap.add_argument("--out", required=True)
    for name, (kind, help_text) in (options or {}).items():
        ap.add_argument(f"--{name}", type=kind, default=None, help=help_text)
    args = ap.parse_args()
    main = sys.modules.get("__main__")
    task_dir = Path(getattr(main, "__file__", None) or sys.argv[0]).resolve().parent
    ctx = Context(task_id=task_dir.name, size=args.size, out=Path(args.out), task_dir=task_dir,
                  options={name: getattr(args, name) for name in options or {}})
    ctx.public.mkdir(parents=True, exist_ok=True)
    ctx.private.mkdir(parents=True, exist_ok=True)
    try:
        line = build(ctx)
    except DataMissing as e:
        print(f"{ctx.task_id} ({ctx.size}): {' '.join(str(e).split())}", file=sys.stderr, flush=True)
        raise SystemExit(DATA_MISSING_EXIT) from None
    print(f"{ctx.task_id} ({ctx.size}): {line or 'prepared'} -> {ctx.out}")
