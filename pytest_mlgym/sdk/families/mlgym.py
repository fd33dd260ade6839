"""Score an artefact with a task's own MLGym evaluate script (tasks made by ``import-mlgym``).

The task folder holds, in ``private/``, a copy of the user's MLGym files (``mlgym/``: the
evaluate script and the helper modules the agent does not get) and ``mlgym.json`` (what
``import-mlgym`` read from the MLGym task config). The evaluate script keeps MLGym's calling
conventions; this adapter gives it the workspace it expects, once per split:

- ``CSVSubmissionTasks`` (``python evaluate.py --submission_file PATH``, answers read from the
  workspace's ``data/``): the hidden answer rows are split by ``ctx.row_splits`` on their id
  column (the first); each split gets a workspace of its own holding the public data (links),
  the answer rows of that split and the submission's rows at the same positions (MLGym's scripts
  align predictions with answers by position). The script's literal ``/home/agent/workspace``
  becomes that folder. Both splits run in one trusted process (the script is the task author's).
- ``PythonSubmissionTasks`` (``python evaluate.py``, importing the agent's file): MLGym runs the
  script and the agent's module in one process, so the agent's code could print any score or read
  the opponent. Here the script runs trusted, in this evaluator, with its helper modules (the
  opponent) that the agent never gets, and the agent's module is a proxy: each function the script
  calls on it runs in the agent code's own sandbox
  (:class:`~pytest_mlgym.sdk.untrusted.Untrusted`), arguments and results as JSON. The script's
  ``random``/numpy are seeded from the secret's stream of each split (one run per split); the
  agent's process gets the evaluation seed, so it cannot replay the script's draws.

The metrics are the JSON object the script prints (MLGym reads its output as JSON).
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..evaluator import Context, EvaluatorError, Invalid
from .. import readers

if TYPE_CHECKING:
    from ..untrusted import Untrusted

WORKSPACE = "/home/agent/workspace"  # MLGym's agent workspace, as its evaluate scripts name it
MAX_ARTEFACT = 64 << 20
MAX_SOURCE = 1 << 20

# Runs the evaluate script once per split folder in one process (pandas and the like import once).
DRIVER = r"""
import contextlib, io, json, os, runpy, sys
script, args, out = sys.argv[1], json.loads(sys.argv[2]), {}
for folder in sys.argv[3:]:
    buf = io.StringIO()
    os.chdir(folder)
    sys.path.insert(0, folder)
    sys.argv = [os.path.join(folder, script)] + [a.replace("{workspace}", folder) for a in args]
    try:
        with contextlib.redirect_stdout(buf):
            runpy.run_path(sys.argv[0], run_name="__main__")
        out[folder] = {"stdout": buf.getvalue()[-20000:]}
    except SystemExit as e:
        ok = e.code in (0, None)
        out[folder] = {"stdout": buf.getvalue()[-20000:]} if ok else {"error": f"exit {e.code}"}
    except BaseException as e:
        out[folder] = {"error": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"}
    sys.path.remove(folder)
sys.__stdout__.write("\n" + json.dumps(out) + "\n")
"""

def config(ctx: Context) -> dict:
    path = ctx.task_dir / "private" / "mlgym.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise EvaluatorError(f"{path}: cannot read the import's settings: {e}") from None


def score(ctx: Context) -> dict:
    """The evaluator's scoring rule: ``evaluator.run(mlgym.score)``."""
    cfg = config(ctx)
    if cfg["entrypoint"] == "CSVSubmissionTasks":
        return _csv(ctx, cfg)
    if cfg["entrypoint"] == "PythonSubmissionTasks":
        return _python(ctx, cfg)
    raise EvaluatorError(f"MLGym task_entrypoint {cfg['entrypoint']} is not supported by this adapter")


def metrics(output: str, metric: str) -> dict:
    """The last JSON object the script printed, with the task's metric in it."""
    for line in reversed(output.splitlines()):
        if line.strip().startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                continue
            if isinstance(found, dict) and isinstance(found.get(metric), (int, float)):
                return {k: v for k, v in found.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    tail = " ".join(output.split())[-200:]
    raise Invalid(f"MLGym's evaluate script printed no JSON metrics with {metric!r}" + (f": {tail}" if tail else ""))


# -- CSVSubmissionTasks -------------------------------------------------------------------------------
def _rows(path: Path, what: str, max_bytes: int) -> list[list[str]]:
    text = readers.text(path, max_bytes)
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error as e:
        raise Invalid(f"unreadable CSV {what}: {e}") from None
    if len(rows) < 2:
        raise Invalid(f"{what} has no rows under its header")
    return rows


def _write(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _csv(ctx: Context, cfg: dict) -> dict:
    answers = {name: _answers(ctx, name) for name in cfg["answers"]}
    first = next(iter(answers.values()))
    ids = [row[0] for row in first[1:]]
    if any(len(rows) != len(first) for rows in answers.values()):
        raise EvaluatorError("the answer files have different numbers of rows: cannot split them together")
    sub = _rows(ctx.artefact, ctx.artefact.name, MAX_ARTEFACT)
    if len(sub) != len(first):
        raise Invalid(f"{ctx.artefact.name} has {len(sub) - 1} rows; expected {len(ids)}, one per test row, "
                      "in the order of the test data")
    masks = ctx.row_splits(ids)
    folders = {}
    for split, mask in masks.items():
        folder = Path(tempfile.mkdtemp(prefix=f"mlgym-{split}-", dir=Path.cwd()))
        (folder / "data").mkdir()
        if ctx.public_dir is not None:
            for item in ctx.public_dir.iterdir():
                (folder / "data" / item.name).symlink_to(item)
        for name, rows in answers.items():
            _write(folder / "data" / name, [rows[0]] + [r for r, keep in zip(rows[1:], mask) if keep])
        _write(folder / ctx.artefact.name, [sub[0]] + [r for r, keep in zip(sub[1:], mask) if keep])
        _copy_scripts(ctx, cfg, folder)
        folders[split] = folder
    args = [a.replace("{artefact}", "{workspace}/" + ctx.artefact.name) for a in cfg["args"]]
    budget = cfg.get("budget_s", 60) * len(folders)
    try:
        proc = subprocess.run([sys.executable, "-c", DRIVER, cfg["evaluate"], json.dumps(args),
                               *map(str, folders.values())], capture_output=True, text=True, errors="replace",
                              timeout=budget)
    except subprocess.TimeoutExpired:
        raise Invalid(f"MLGym's evaluate script ran past {budget:g} s") from None
    try:
        runs = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise EvaluatorError(f"the MLGym evaluate driver failed (exit {proc.returncode}): "
                             f"{' '.join(proc.stderr.split())[-300:]}") from None
    out = {}
    for split, folder in folders.items():
        run = runs[str(folder)]
        if "error" in run:
            raise Invalid(f"MLGym's evaluate script failed on the {split} split: {run['error']}")
        out[split] = metrics(run["stdout"], cfg["metric"])
    return out


def _answers(ctx: Context, name: str) -> list[list[str]]:
    try:
        return _rows(ctx.private(name), name, 1 << 30)
    except Invalid as e:  # our own hidden file: never the agent's fault
        raise EvaluatorError(f"hidden answers {name}: {e}") from None


def _copy_scripts(ctx: Context, cfg: dict, folder: Path) -> None:
    """The evaluate script and its helpers, with MLGym's workspace path pointing at ``folder``."""
    source = ctx.task_dir / "private" / "mlgym"
    for name in [cfg["evaluate"], *cfg.get("helpers", [])]:
        text = (source / name).read_text()
        (folder / name).write_text(text.replace(WORKSPACE, str(folder)))


# -- PythonSubmissionTasks ---------------------------------------------------------------------------
class _AgentModule(types.ModuleType):
    """The agent's file as the evaluate script imports it: every function call runs in its own sandbox."""

    def __init__(self, name: str, code: Untrusted) -> None:
        super().__init__(name, "the agent's file: every call runs in its own sandbox")
        self.__code = code

    def __getattr__(self, name: str) -> Callable[..., Any]:
        code = self.__code
        return lambda *args: code.call(name, *args)


def _python(ctx: Context, cfg: dict) -> dict:
    import contextlib
    import os
    import random
    import runpy

    from ..untrusted import Untrusted, UntrustedError

    readers.regular_file(ctx.artefact, MAX_SOURCE)
    module = ctx.artefact.stem  # the name the script imports the agent's file by
    out = {}
    for split in ("dev", "test"):
        folder = Path(tempfile.mkdtemp(prefix=f"mlgym-{split}-", dir=Path.cwd()))
        _copy_scripts(ctx, cfg, folder)
        seed = ctx.stream("mlgym-evaluation", split).getrandbits(31)
        buf, saved, cwd, argv = io.StringIO(), sys.modules.get(module), os.getcwd(), sys.argv
        with Untrusted(ctx.artefact, seed=ctx.seed, budget_s=cfg.get("budget_s", 60)) as code:
            sys.modules[module] = _AgentModule(module, code)
            random.seed(seed)
            try:
                import numpy

                numpy.random.seed(seed)
            except ImportError:  # pragma: no cover - numpy is installed with the engine
                pass
            sys.path.insert(0, str(folder))
            os.chdir(folder)
            sys.argv = [str(folder / cfg["evaluate"])]
            try:
                with contextlib.redirect_stdout(buf):
                    runpy.run_path(sys.argv[0], run_name="__main__")
            except SystemExit as e:
                if e.code not in (0, None):
                    raise Invalid(f"MLGym's evaluate script exited {e.code} on the {split} split") from None
            except UntrustedError:
                raise
            except Exception as e:  # the agent's functions returned what the script cannot use
                raise Invalid(f"MLGym's evaluate script failed on the {split} split: {type(e).__name__}: "
                              f"{' '.join(str(e).split())[:200]}") from None
            finally:
                sys.argv = argv
                os.chdir(cwd)
                sys.path.remove(str(folder))
                sys.modules.pop(module, None)
                if saved is not None:
                    sys.modules[module] = saved
        out[split] = metrics(buf.getvalue(), cfg["metric"])
    return out
