"""``python -m pytest_mlgym new-task ID [--dir tasks]``: a new task folder that passes check-task.

The folder is a complete, small task to edit into a real one (templates/new_task/): task.yaml,
prepare.py on :mod:`pytest_mlgym.sdk.prepare` (a synthetic regression from a fixed seed),
private/evaluate.py on :mod:`pytest_mlgym.sdk.evaluator` (R^2 on a dev and a test split of the
hidden answers, split by ``ctx.row_splits``), a fresh private/secret (``secrets.token_hex(32)``:
it keys the split, so each task's split is its own), workspace/ (baseline.py, README.md,
sample_submission.csv), reference/solution.py and tests/test_<id>.py. The baseline is then
measured (:mod:`.measure`), which writes its test and dev scores and wall time into task.yaml.
"""
from __future__ import annotations

import re
import secrets
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates" / "new_task"
N_TRAIN, N_TEST = 400, 200  # as the template's prepare.py


class ScaffoldError(Exception):
    """The folder cannot be made; one line."""


def new_task(task_id: str, root: Path, name: str | None = None) -> Path:
    """Write the task folder ``root/<task_id>`` from the templates; return it."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", task_id):
        raise ScaffoldError(f"task id {task_id!r}: lower case letters, digits and _, starting with a letter")
    folder = Path(root) / task_id
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists")
    words = {"{{id}}": task_id, "{{name}}": name or task_id.replace("_", " ").capitalize()}
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        rel = template.relative_to(TEMPLATES).with_suffix("")  # drop .tmpl
        rel = rel.with_name(rel.name.replace("TASK", task_id))
        text = template.read_text()
        for key, value in words.items():
            text = text.replace(key, value)
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    (folder / "private" / "secret").write_text(secrets.token_hex(32) + "\n")
    ids = range(N_TRAIN, N_TRAIN + N_TEST)
    (folder / "workspace" / "sample_submission.csv").write_text("id,y\n" + "".join(f"{i},0.0\n" for i in ids))
    return folder


def add_parser(sub) -> None:
    p = sub.add_parser("new-task", help="make a new task folder (synthetic data, SDK evaluator) that passes check-task")
    p.add_argument("id", help="the task id: lower case letters, digits and _")
    p.add_argument("--dir", type=Path, default=Path("tasks"), help="the folder of task folders (default: tasks)")
    p.add_argument("--name", default=None, help="the task's display name")
    p.add_argument("--no-measure", action="store_true", help="do not run the baseline to record its scores")


def main(args) -> int:
    from . import measure

    try:
        folder = new_task(args.id, args.dir, args.name)
    except ScaffoldError as e:
        print(f"new-task: {e}")
        return 1
    print(f"new-task: wrote {folder}")
    if not args.no_measure and not measure.measure_new(folder, "new-task"):
        return 1
    print(f"next: edit it, then python -m pytest_mlgym measure {folder} && python -m pytest_mlgym check-task {folder}")
    return 0
