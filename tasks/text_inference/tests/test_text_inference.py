"""text_inference: the MultiNLI loader (on a tiny fixture in the original jsonl layout), the
lite Rotten Tomatoes data, the baseline on sentence pairs, and the evaluator on bad submissions.

prepare.py and the evaluator run as the harness runs them: subprocesses, the evaluator in a
scratch folder holding the artefact, its last stdout line being one JSON object.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_mlgym.testing.scripts import evaluator_result, run_prepare

TASK = Path(__file__).resolve().parents[1]
NLI = ["entailment", "neutral", "contradiction"]


def prepare(out: Path, size: str, data_dir: Path | None) -> subprocess.CompletedProcess:
    return run_prepare(TASK, out, size, data_dir)


def evaluate(folder: Path, private: Path, content: str | None = None) -> dict:
    if content is not None:
        (folder / "submission.csv").write_text(content)
    return evaluator_result(TASK, folder, "submission.csv", {"MLGYM_PRIVATE_DATA": str(private)})


def overall(result: dict) -> float:
    """The accuracy over both splits together (every hidden row)."""
    return round(sum(m["correct"] for m in result.values()) / sum(m["total"] for m in result.values()), 6)


def nli_line(i: int, gold: str) -> str:
    """One MultiNLI 1.0 jsonl record with all its original fields (parses abbreviated)."""
    s1, s2 = f"Premise number {i}, with a comma and \"quotes\".", "n/a" if i == 3 else f"Hypothesis {i}\nsplit"
    return json.dumps({"annotator_labels": [gold], "genre": "fiction", "gold_label": gold, "pairID": f"{i}e",
                       "promptID": str(i), "sentence1": s1, "sentence1_binary_parse": "( x )",
                       "sentence1_parse": "(ROOT x)", "sentence2": s2, "sentence2_binary_parse": "( y )",
                       "sentence2_parse": "(ROOT y)"})


def write_multinli(root: Path) -> dict:
    """multinli_1.0/ with a 40-line train file and an 8-line dev_matched file, a few '-' labels."""
    folder = root / "text_inference" / "multinli_1.0"
    folder.mkdir(parents=True)
    golds = {"train": [NLI[i % 3] if i % 13 else "-" for i in range(40)],
             "dev": [NLI[(k * 2) % 3] if k != 5 else "-" for k in range(8)]}
    (folder / "multinli_1.0_train.jsonl").write_text("".join(nli_line(i, g) + "\n" for i, g in enumerate(golds["train"])))
    (folder / "multinli_1.0_dev_matched.jsonl").write_text(
        "".join(nli_line(i, g) + "\n" for i, g in zip(range(100, 108), golds["dev"])))
    (folder / "multinli_1.0_dev_mismatched.jsonl").write_text(nli_line(999, "neutral") + "\n")  # not used
    return golds


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlgym_data")
    golds = write_multinli(root)
    out = tmp_path_factory.mktemp("full")
    proc = prepare(out, "full", root)
    assert proc.returncode == 0, proc.stderr
    return out, golds, root


def read(path: Path):
    import pandas as pd  # here, not at collection: pandas is ~300 modules

    return pd.read_csv(path, keep_default_na=False)


def test_full_size_reads_the_multinli_jsonl(full, tmp_path):
    import pandas as pd

    out, golds, root = full
    pub, priv = out / "public", out / "private"
    train, val, test = read(pub / "train.csv"), read(pub / "validation.csv"), read(pub / "test.csv")
    assert list(train.columns) == list(val.columns) == ["id", "premise", "hypothesis", "label"]
    assert list(test.columns) == ["id", "premise", "hypothesis"]
    assert json.loads((pub / "labels.json").read_text()) == json.loads((priv / "labels.json").read_text()) == NLI

    # The test set is dev_matched in file order without its '-' pair; its labels stay private.
    kept = [(i, g) for i, g in zip(range(100, 108), golds["dev"]) if g != "-"]
    assert test["premise"].tolist() == [f"Premise number {i}, with a comma and \"quotes\"." for i, _ in kept]
    assert test["hypothesis"].tolist() == [f"Hypothesis {i}\nsplit" for i, _ in kept]  # newlines survive
    answers = read(priv / "answers.csv")
    assert answers["id"].tolist() == test["id"].tolist() == list(range(7))
    assert answers["label"].tolist() == [NLI.index(g) for _, g in kept]

    # Train + validation are the 36 labelled training pairs, each with its own label, none lost;
    # "n/a" stays text; validation is a tenth of them.
    labelled = {f"Premise number {i}, with a comma and \"quotes\".": NLI.index(g)
                for i, g in enumerate(golds["train"]) if g != "-"}
    both = pd.concat([train, val])
    assert len(val) == 3 and len(both) == 36 and set(both["premise"]) == set(labelled)
    assert all(labelled[p] == y for p, y in zip(both["premise"], both["label"]))
    assert "n/a" in set(both["hypothesis"])
    assert sorted(both["id"]) == list(range(7, 43))

    sample = read(pub / "sample_submission.csv")
    assert sample["id"].tolist() == test["id"].tolist()
    assert evaluate(tmp_path, priv, (pub / "sample_submission.csv").read_text())["test"]["accuracy"] >= 0

    again = tmp_path / "again"  # same bytes on a second run
    assert prepare(again, "full", root).returncode == 0
    for f in sorted(p for p in out.rglob("*") if p.is_file()):
        assert (again / f.relative_to(out)).read_bytes() == f.read_bytes(), f.name


def test_full_size_without_data_exits_3_saying_where_to_put_it(tmp_path):
    proc = prepare(tmp_path / "out", "full", tmp_path)
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "text_inference/multinli_1.0" in lines[0]
    assert "multinli_1.0_train.jsonl" in lines[0] and "multinli_1.0_dev_matched.jsonl" in lines[0]
    proc = prepare(tmp_path / "out", "full", None)  # no MLGYM_DATA_DIR at all
    assert proc.returncode == 3 and proc.stderr.strip().splitlines() == [
        "text_inference (full): set MLGYM_DATA_DIR to a folder holding text_inference/ "
        "(see tasks/text_inference/workspace/README.md for its layout)"]


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    out = tmp_path_factory.mktemp("lite")
    proc = prepare(out, "lite", None)
    assert proc.returncode == 0, proc.stderr
    return out


def test_lite_size_is_rotten_tomatoes_deduplicated_and_split(lite):
    import pandas as pd

    pub = lite / "public"
    train, val, test = read(pub / "train.csv"), read(pub / "validation.csv"), read(pub / "test.csv")
    assert (len(train), len(val), len(test)) == (10202, 1275, 1275)
    assert list(train.columns) == ["id", "text", "label"] and list(test.columns) == ["id", "text"]
    texts = pd.concat([train["text"], val["text"], test["text"]])
    assert texts.is_unique and (texts.str.len() > 0).all()
    assert set(train["label"]) == {0, 1} and 0.5 < train["label"].mean() < 0.65  # fresh is the majority
    assert json.loads((pub / "labels.json").read_text()) == ["rotten", "fresh"]
    # The workspace's sample submission is the lite one.
    assert (TASK / "workspace" / "sample_submission.csv").read_bytes() == (pub / "sample_submission.csv").read_bytes()


def test_the_baseline_handles_sentence_pairs_and_its_submission_is_valid(full, tmp_path):
    out, *_ = full
    ws = tmp_path / "ws"
    shutil.copytree(TASK / "workspace", ws)
    shutil.copytree(out / "public", ws / "data")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HOME": str(ws)}  # as in the sandbox: no hub, no ~/.cache
    proc = subprocess.run([sys.executable, "train.py"], cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 0 <= evaluate(ws, out / "private")["test"]["accuracy"] <= 1


def rows(labels, ids=None) -> str:
    ids = range(len(labels)) if ids is None else ids
    return "id,label\n" + "".join(f"{i},{c}\n" for i, c in zip(ids, labels))


@pytest.fixture(scope="module")
def truth(lite):
    answers = read(lite / "private" / "answers.csv")
    return lite / "private", answers["label"].tolist()


def test_accuracy_is_a_fraction_per_split_in_any_row_order(truth, tmp_path):
    private, labels = truth
    n = len(labels)
    perfect = evaluate(tmp_path, private, rows(labels))
    assert perfect["dev"]["accuracy"] == perfect["test"]["accuracy"] == 1.0
    assert perfect["dev"]["total"] + perfect["test"]["total"] == n and 0.15 < perfect["dev"]["total"] / n < 0.25
    order = list(reversed(range(n)))
    assert evaluate(tmp_path, private, rows([labels[i] for i in order], order)) == perfect
    wrong = [1 - c for c in labels[:51]] + labels[51:]
    assert overall(evaluate(tmp_path, private, rows(wrong))) == round(1 - 51 / n, 6)
    extra = "id,label,p\n" + "".join(f" {i} , {c} ,0.5\n" for i, c in enumerate(labels))
    assert evaluate(tmp_path, private, extra) == perfect  # spaces and extra columns are fine
    sample = (TASK / "workspace" / "sample_submission.csv").read_text()
    assert overall(evaluate(tmp_path, private, sample)) == round(sum(labels) / n, 6)  # all "fresh"


N = 1275


@pytest.mark.parametrize("content, reason", [
    (rows([0] * (N - 1)), "expected 1275 rows, got 1274"),
    (rows([0] * (N + 1)), "unknown id"),
    (rows([0] * N, list(range(N - 1)) + [0]), "duplicate id"),
    (rows([0] * N, range(1, N + 1)), "unknown id"),
    (rows([0] * N, list(range(N - 1)) + ["x"]), "id must be an integer"),
    (rows([0] * (N - 1) + ["nan"]), "label must be an integer"),
    (rows([0] * (N - 1) + ["NaN"]), "label must be an integer"),
    (rows([0] * (N - 1) + [""]), "label must be an integer"),
    (rows([0] * (N - 1) + ["1.0"]), "label must be an integer"),
    (rows([0] * (N - 1) + ["0.5"]), "label must be an integer"),
    (rows([0] * (N - 1) + ["fresh"]), "label must be an integer"),
    (rows([0] * (N - 1) + [2]), "outside 0..1"),
    (rows([0] * (N - 1) + [-1]), "outside 0..1"),
    (rows([0] * (N - 1) + ["99999999999999999999999"]), "outside 0..1"),
    ("id;label\n" + "".join(f"{i};0\n" for i in range(N)), "missing column"),
    ("id,prediction\n" + "".join(f"{i},0\n" for i in range(N)), "missing column"),
    ("id,label\n" + "".join(f"{i},0\n" for i in range(N - 1)) + f"{N - 1}\n", "1 field(s), the header has 2"),
    ("id,label\n" + "".join(f"{i},0,7,7\n" for i in range(N)), "4 field(s), the header has 2"),
], ids=["short", "long", "dup-id", "unknown-id", "text-id", "nan", "NaN", "empty", "float", "fraction", "word",
        "class-2", "negative", "huge", "semicolons", "no-label-column", "missing-cell", "extra-cells"])
def test_malformed_submissions_are_invalid_with_a_reason(truth, tmp_path, content, reason):
    private, _ = truth
    assert reason in evaluate(tmp_path, private, content)["invalid"]


def test_full_size_accepts_three_classes(full, tmp_path):
    out, *_ = full
    answers = read(out / "private" / "answers.csv")
    result = evaluate(tmp_path, out / "private", rows(answers["label"], answers["id"]))
    assert overall(result) == 1.0 and sum(m["total"] for m in result.values()) == len(answers)
    assert "outside 0..2" in evaluate(tmp_path, out / "private", rows([3] * len(answers)))["invalid"]
