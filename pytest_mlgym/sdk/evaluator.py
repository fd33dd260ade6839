"""The evaluator entry point: argv, environment, splits and the one-line result protocol.

A task's ``private/evaluate.py`` is its scoring rule and little else::

    from pytest_mlgym.sdk import Invalid, evaluator

    def score(ctx: evaluator.Context) -> dict:
        pred = read_predictions(ctx.artefact)            # raise Invalid("one line") when malformed
        return {split: {"r2": r2(pred[m], y[m])} for split, m in ctx.row_splits(ids).items()}

    if __name__ == "__main__":
        evaluator.run(score)

``score`` returns one metrics dict per split (``{"dev": {...}, "test": {...}}``): the *dev* split
is what the agent's ``validate`` shows, the *test* split (hidden answers, a disjoint evaluation
stream, seeds or instance set) is recorded by the harness and never shown before the episode
ends. Both are scored in one evaluator run. The entry point prints exactly one JSON line,

    {"dev": {"r2": 0.88}, "test": {"r2": 0.87}}      or      {"invalid": "one-line reason"}

and exits 0 for any artefact, however broken. Errors that are not the artefact's fault (answers
missing, no secret: :class:`EvaluatorError`, ``SecretMissing``) exit 2 with one line on stderr,
so the harness reports its own failure instead of blaming the agent.

Run by hand: ``python evaluate.py ARTEFACT`` with ``MLGYM_PRIVATE_DATA``, ``MLGYM_PUBLIC_DATA``,
``MLGYM_SEED`` (default 0) and ``MLGYM_SIZE`` (default lite) set as the harness sets them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import streams

SPLITS = ("dev", "test")
HARNESS_ERROR_EXIT = 2  # not the artefact's fault: the harness reports it as its own failure


class Invalid(Exception):
    """The artefact is malformed, missing or cheating; the message (one line) goes to the agent."""


class EvaluatorError(Exception):
    """The evaluator cannot run (answers missing, a broken install): never the agent's failure."""


@dataclass(frozen=True)
class Context:
    artefact: Path  # the copy of the agent's artefact (a file or a folder), in the scratch folder
    size: str  # lite | full
    seed: int  # the evaluation seed (the agent's code is seeded with it too: never an opponent's)
    task_dir: Path  # the task folder (this evaluator's parent's parent)
    private_dir: Path | None  # prepared private data (hidden answers), if the task prepares data
    public_dir: Path | None  # prepared public data (what the agent's workspace has under data/)

    def private(self, name: str = "", split: str | None = None) -> Path:
        """A file of the prepared private data (``private/<split>/<name>`` when ``split`` is given)."""
        if self.private_dir is None:
            raise EvaluatorError("no prepared private data (MLGYM_PRIVATE_DATA is unset)")
        path = self.private_dir / (split or "") / name
        if not path.exists():
            raise EvaluatorError(f"hidden data missing: {path}")
        return path

    def public(self, name: str = "") -> Path:
        if self.public_dir is None:
            raise EvaluatorError("no prepared public data (MLGYM_PUBLIC_DATA is unset)")
        path = self.public_dir / name
        if not path.exists():
            raise EvaluatorError(f"public data missing: {path}")
        return path

    def shared(self, name: str) -> Path:
        """A file the task.yaml declares ``shared``: the task folder's pristine workspace copy (never
        the agent's), e.g. the model definition both train.py and the evaluator use."""
        return shared_path(self.task_dir, name)

    def import_shared(self, name: str):
        """Import a declared shared ``.py`` file as a module (from the task folder, never the agent's
        copy), once per process (:func:`import_path`)."""
        return import_path(self.shared(name))

    def stream(self, purpose: str, split: str = "test"):
        """A ``random.Random`` the agent cannot replay (see :mod:`.streams`), one per split and
        purpose; the test split's is the purpose's own stream, the dev split's a disjoint one."""
        return streams.random_stream(self.seed, _purpose(purpose, split), self.task_dir / "private")

    def numpy_stream(self, purpose: str, split: str = "test"):
        return streams.numpy_stream(self.seed, _purpose(purpose, split), self.task_dir / "private")

    def seeds(self, split: str, n: int, base: int = 0) -> list[int]:
        """``n`` evaluation seeds of one split, disjoint across splits: test takes ``base .. base+n-1``
        (so a task's published test protocol keeps its seeds), dev the ``n`` after 10**6."""
        start = base + (10**6 if split == "dev" else 0)
        return list(range(start, start + n))

    def row_splits(self, ids, dev_fraction: float = 0.2) -> dict:
        """Boolean masks ``{"dev": ..., "test": ...}`` over hidden rows identified by ``ids``: a
        row's split is a keyed hash of its id (the task's secret), fixed for the task, about
        ``dev_fraction`` of the rows dev, unknowable to the agent. With two rows or more, neither
        split is empty (a tiny test fixture): the row hashed lowest (highest) moves to dev (test)."""
        import numpy as np

        key = streams.secret(self.task_dir / "private")
        h = np.array([int.from_bytes(hmac.new(key, f"mlgym-split:{i}".encode(), hashlib.sha256).digest()[:4], "big")
                      for i in ids], dtype=np.int64)
        dev = h < int(dev_fraction * 2**32)
        if len(h) >= 2 and not dev.any():
            dev[np.argmin(h)] = True
        if len(h) >= 2 and dev.all():
            dev[np.argmax(h)] = False
        return {"dev": dev, "test": ~dev}


def shared_path(task_dir: Path, name: str) -> Path:
    """``task_dir/workspace/name``, for a file task.yaml declares in ``shared``."""
    import yaml

    declared = (yaml.safe_load((task_dir / "task.yaml").read_text()) or {}).get("shared") or []
    if name not in declared:
        raise EvaluatorError(f"{name} is not declared in task.yaml's shared list ({declared})")
    path = task_dir / "workspace" / name
    if not path.is_file():
        raise EvaluatorError(f"shared file missing: {path}")
    return path


def import_path(path: Path):
    """The ``.py`` file at ``path`` as a module, imported once per process and path. It is in
    ``sys.modules`` (as ``mlgym_shared_<stem>_<hash of the path>``) while it runs (dataclasses and pickle
    look their module up there) and is compiled from source: no ``__pycache__`` is written beside it
    (a task's workspace/ is copied to every agent)."""
    import types

    path = Path(path).resolve()
    module_name = f"mlgym_shared_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:10]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    sys.modules[module_name] = module
    try:
        exec(compile(path.read_bytes(), str(path), "exec"), module.__dict__)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _purpose(purpose: str, split: str) -> str:
    if split not in SPLITS:
        raise EvaluatorError(f"unknown split {split!r} (splits: {', '.join(SPLITS)})")
    return purpose if split == "test" else f"{split}:{purpose}"


def context(argv: list[str] | None = None) -> Context:
    argv = sys.argv if argv is None else argv
    if len(argv) != 2:
        raise Invalid(f"usage: {os.path.basename(argv[0] if argv else 'evaluate.py')} ARTEFACT")
    main = sys.modules.get("__main__")
    script = Path(getattr(main, "__file__", None) or argv[0]).resolve()
    env = os.environ
    seed = int(env.get("MLGYM_SEED") or 0)
    return Context(artefact=Path(os.path.abspath(argv[1])), size=env.get("MLGYM_SIZE") or "lite", seed=seed,
                   task_dir=script.parent.parent,
                   private_dir=Path(env["MLGYM_PRIVATE_DATA"]) if env.get("MLGYM_PRIVATE_DATA") else None,
                   public_dir=Path(env["MLGYM_PUBLIC_DATA"]) if env.get("MLGYM_PUBLIC_DATA") else None)


def one_line(text: object, limit: int = 300) -> str:
    """``text`` (a message or an exception) as one line of at most ``limit`` characters."""
    return " ".join(str(text).split())[:limit]


def result(score: Callable[[Context], dict], argv: list[str] | None = None) -> dict:
    """Run ``score`` and return the protocol object (raises only for harness errors)."""
    from .untrusted import UntrustedError

    try:
        ctx = context(argv)
        scores = score(ctx)
        return check(scores)
    except (Invalid, UntrustedError) as e:
        return {"invalid": one_line(e)}
    except (EvaluatorError, streams.SecretMissing, MemoryError):
        raise
    except Exception as e:  # an artefact that crashes the scoring code is a bad artefact
        return {"invalid": one_line(f"could not score the artefact: {type(e).__name__}: {e}")}


def check(scores) -> dict:
    """The per-split metrics as the protocol carries them: every split a dict of finite numbers
    (or lists of them), at least the test split."""
    if not isinstance(scores, dict) or "test" not in scores or not set(scores) <= set(SPLITS):
        raise EvaluatorError(f"the scoring rule must return {{'dev': {{...}}, 'test': {{...}}}}, got {scores!r:.200}")
    out = {}
    for split, metrics in scores.items():
        if not isinstance(metrics, dict):
            raise EvaluatorError(f"split {split}: metrics must be a dict, got {type(metrics).__name__}")
        for name, value in metrics.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise Invalid(f"the {split} metric {name} is not finite ({value}): predictions out of range")
        out[split] = metrics
    return out


def run(score: Callable[[Context], dict]) -> None:
    """Score the artefact named on the command line, print the result line and exit: the last line
    of an evaluator, ``if __name__ == "__main__": evaluator.run(score)``."""
    try:
        out = result(score)
    except (EvaluatorError, streams.SecretMissing) as e:
        print(f"{os.path.basename(sys.argv[0])}: {one_line(e, 500)}", file=sys.stderr, flush=True)
        raise SystemExit(HARNESS_ERROR_EXIT) from None
    # The leading newline ends any partial line that reached our stdout, so the last line is ours.
    sys.stdout.write("\n" + json.dumps(out, allow_nan=False) + "\n")
    sys.stdout.flush()
    raise SystemExit(0)
