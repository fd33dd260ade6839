"""pytest_mlgym.sdk.families.classification: accuracy per split over hidden id,label answers."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mlgym.sdk import EvaluatorError, Invalid
from pytest_mlgym.sdk.evaluator import Context, result
from pytest_mlgym.sdk.families import classification


def context(tmp_path: Path, labels: list[int], submission: str) -> Context:
    task = tmp_path / "task"
    (task / "private").mkdir(parents=True)
    (task / "private" / "secret").write_text("ab" * 32 + "\n")
    data = tmp_path / "prepared"
    data.mkdir()
    (data / "answers.csv").write_text("id,label\n" + "".join(f"{i},{c}\n" for i, c in enumerate(labels)))
    (tmp_path / "submission.csv").write_text(submission)
    return Context(tmp_path / "submission.csv", "lite", 0, task, data, None)


def rows(labels) -> str:
    return "id,label\n" + "".join(f"{i},{c}\n" for i, c in enumerate(labels))


def test_each_split_counts_its_own_rows(tmp_path):
    labels = [i % 3 for i in range(500)]
    ctx = context(tmp_path, labels, rows(labels))
    dev = ctx.row_splits(list(range(500)))["dev"]
    wrong = [(c + 1) % 3 if dev[i] else c for i, c in enumerate(labels)]  # every dev row wrong
    (tmp_path / "submission.csv").write_text(rows(wrong))
    out = classification.score(ctx, n_classes=3)
    assert out["dev"] == {"accuracy": 0.0, "correct": 0, "total": int(dev.sum())}
    assert out["test"] == {"accuracy": 1.0, "correct": 500 - int(dev.sum()), "total": 500 - int(dev.sum())}
    assert 70 < dev.sum() < 130


def test_labels_outside_the_classes_are_invalid(tmp_path):
    ctx = context(tmp_path, [0, 1, 2, 0], rows([0, 1, 3, 0]))
    with pytest.raises(Invalid, match=r"1 label\(s\) outside 0..2, e.g. id 2: 3"):
        classification.score(ctx, n_classes=3)
    assert result(lambda _: classification.score(ctx, n_classes=3), ["evaluate.py", str(ctx.artefact)]) == {
        "invalid": "1 label(s) outside 0..2, e.g. id 2: 3"}


def test_malformed_hidden_answers_are_the_harness_error(tmp_path):
    ctx = context(tmp_path, [0, 1], rows([0, 1]))
    (ctx.private_dir / "answers.csv").write_text("Id,Label\n0,1\n")
    with pytest.raises(EvaluatorError, match="header id,label"):
        classification.score(ctx, n_classes=2)
