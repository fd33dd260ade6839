"""Classification tasks scored on an ``id,label`` CSV: accuracy per split over hidden labels.

The hidden answers are ``answers.csv`` in the prepared private data (header ``id,label``, integer
ids and class indices, one row per test example). The artefact must hold one row per hidden id,
in any order, with an integer class index ``0..n_classes-1`` (extra columns are ignored). The
hidden rows are split into dev (~20%) and test (~80%) by :meth:`Context.row_splits`; each split's
metrics are ``accuracy`` (a fraction, 6 decimals), ``correct`` and ``total``. An evaluator is then

    from pytest_mlgym.sdk import evaluator
    from pytest_mlgym.sdk.families import classification

    if __name__ == "__main__":
        evaluator.run(lambda ctx: classification.score(ctx, n_classes=10))
"""
from __future__ import annotations

from .. import readers
from ..evaluator import Context, EvaluatorError, Invalid

MAX_BYTES = 20 << 20  # a valid submission is ~100 KB at the full sizes; refuse absurd files early


def answers(ctx: Context, name: str = "answers.csv") -> tuple[list[int], list[int]]:
    """The hidden ``(ids, labels)`` (trusted data: a malformed file is the harness's error)."""
    import csv

    path = ctx.private(name)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0]] != ["id", "label"]:
        raise EvaluatorError(f"{path}: the hidden answers must have the header id,label")
    try:
        pairs = [(int(r[0]), int(r[1])) for r in rows[1:] if r]
    except (ValueError, IndexError) as e:
        raise EvaluatorError(f"{path}: unreadable answers ({e})") from None
    return [i for i, _ in pairs], [c for _, c in pairs]


def predictions(ctx: Context, ids: list[int], n_classes: int) -> list[int]:
    """The artefact's labels aligned to ``ids``; :class:`Invalid` for anything malformed."""
    table = readers.csv_table(ctx.artefact, id_column="id", columns={"id": int, "label": int}, ids=ids,
                              max_bytes=MAX_BYTES, extra_columns=True)
    labels = table["label"]
    out = [k for k, c in enumerate(labels) if not 0 <= c < n_classes]
    if out:
        k = out[0]
        raise Invalid(f"{len(out)} label(s) outside 0..{n_classes - 1}, e.g. id {ids[k]}: {str(labels[k])[:30]}")
    return labels


def score(ctx: Context, n_classes: int, answers_file: str = "answers.csv") -> dict:
    """``{"dev": {...}, "test": {...}}``: accuracy, correct and total per split (an empty split,
    possible only on a handful of hidden rows, is left out)."""
    import numpy as np

    ids, truth = answers(ctx, answers_file)
    hit = np.asarray(predictions(ctx, ids, n_classes)) == np.asarray(truth)
    out = {}
    for split, mask in ctx.row_splits(ids).items():
        total = int(mask.sum())
        if total:
            correct = int(hit[mask].sum())
            out[split] = {"accuracy": round(correct / total, 6), "correct": correct, "total": total}
    return out
