"""image_classification: the CIFAR-10 loader (on a tiny fixture in the original pickle layout),
the lite data, the baseline on colour images, and the evaluator's handling of bad submissions.

prepare.py and the evaluator run as the harness runs them: subprocesses, the evaluator in a
scratch folder holding the artefact, its last stdout line being one JSON object.
"""
from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_mlgym.testing.scripts import evaluator_result, run_prepare

TASK = Path(__file__).resolve().parents[1]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def prepare(out: Path, size: str, data_dir: Path | None) -> subprocess.CompletedProcess:
    return run_prepare(TASK, out, size, data_dir)


def evaluate(folder: Path, private: Path, content: str | None = None) -> dict:
    if content is not None:
        (folder / "submission.csv").write_text(content)
    return evaluator_result(TASK, folder, "submission.csv", {"MLGYM_PRIVATE_DATA": str(private)})


def overall(result: dict) -> dict:
    """Both splits together: {"accuracy", "correct", "total"} over every hidden row."""
    correct = sum(m["correct"] for m in result.values())
    total = sum(m["total"] for m in result.values())
    return {"accuracy": round(correct / total, 6), "correct": correct, "total": total}


def write_cifar(root: Path, n_per_batch: int = 20, n_test: int = 10) -> dict:
    """CIFAR-10's python layout: pickled dicts with bytes keys, rows of 3072 uint8 (R, G, B planes)."""
    folder = root / "image_classification" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    batches = {}
    for name, n in [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        d = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"img{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(d, protocol=2))
        batches[name] = d
    meta = {b"num_cases_per_batch": n_per_batch, b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return batches


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The tiny CIFAR fixture, prepared at the full size: (out folder, the raw batches)."""
    root = tmp_path_factory.mktemp("mlgym_data")
    batches = write_cifar(root)
    out = tmp_path_factory.mktemp("full")
    proc = prepare(out, "full", root)
    assert proc.returncode == 0, proc.stderr
    return out, batches, root


def test_full_size_reads_the_cifar_pickles(full, tmp_path):
    out, batches, root = full
    pub = out / "public"
    x, y = np.load(pub / "train_images.npy"), np.load(pub / "train_labels.npy")
    xv, yv = np.load(pub / "val_images.npy"), np.load(pub / "val_labels.npy")
    xt = np.load(pub / "test_images.npy")
    assert x.shape == (90, 32, 32, 3) and xv.shape == (10, 32, 32, 3) and xt.shape == (10, 32, 32, 3)
    assert x.dtype == xt.dtype == np.uint8 and y.dtype == yv.dtype == np.int64
    assert json.loads((pub / "classes.json").read_text()) == CLASSES

    # The test set is test_batch in its original order, rows decoded as R, G, B planes of 32x32.
    test = batches["test_batch"]
    planes = test[b"data"].reshape(-1, 3, 32, 32)
    assert np.array_equal(xt[..., 0], planes[:, 0]) and np.array_equal(xt[..., 2], planes[:, 2])
    answers = (out / "private" / "answers.csv").read_text().splitlines()
    assert answers == ["id,label"] + [f"{i},{c}" for i, c in enumerate(test[b"labels"])]

    # Train + validation are exactly the 100 training images with their own labels, none lost.
    data = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    labels = sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    flat = np.concatenate([x, xv]).transpose(0, 3, 1, 2).reshape(-1, 3072)
    index = {row.tobytes(): i for i, row in enumerate(data)}
    rows = [index[row.tobytes()] for row in flat]
    assert sorted(rows) == list(range(100))
    assert np.concatenate([y, yv]).tolist() == [labels[i] for i in rows]

    # Same bytes on a second run.
    again = tmp_path / "again"
    assert prepare(again, "full", root).returncode == 0
    for f in sorted((out / "public").iterdir()) + [out / "private" / "answers.csv"]:
        assert (again / f.relative_to(out)).read_bytes() == f.read_bytes(), f.name


def test_full_size_without_data_exits_3_saying_where_to_put_it(tmp_path):
    proc = prepare(tmp_path / "out", "full", tmp_path)
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "image_classification/cifar-10-batches-py" in lines[0] and "data_batch_1" in lines[0]
    proc = prepare(tmp_path / "out", "full", None)  # no MLGYM_DATA_DIR at all
    assert proc.returncode == 3 and proc.stderr.strip().splitlines() == [
        "image_classification (full): set MLGYM_DATA_DIR to a folder holding image_classification/ "
        "(see tasks/image_classification/workspace/README.md for its layout)"]


def test_lite_size_is_mnist_shuffled_and_split(tmp_path):
    assert prepare(tmp_path / "a", "lite", None).returncode == 0
    pub = tmp_path / "a" / "public"
    x, y = np.load(pub / "train_images.npy"), np.load(pub / "train_labels.npy")
    assert x.shape == (3500, 28, 28, 1) and np.load(pub / "val_images.npy").shape == (500, 28, 28, 1)
    assert np.load(pub / "test_images.npy").shape == (1000, 28, 28, 1)
    assert np.bincount(y).min() > 300  # shuffled, not the package's label-sorted order
    assert len((tmp_path / "a" / "private" / "answers.csv").read_text().splitlines()) == 1001


def test_the_baseline_handles_colour_images_and_its_submission_is_valid(full, tmp_path):
    out, *_ = full
    ws = tmp_path / "ws"
    shutil.copytree(TASK / "workspace", ws)
    shutil.copytree(out / "public", ws / "data")
    proc = subprocess.run([sys.executable, "baseline.py"], cwd=ws, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = evaluate(ws, out / "private")
    assert overall(result)["total"] == 10 and 0 <= result["test"]["accuracy"] <= 1


def rows(labels, ids=None) -> str:
    ids = range(len(labels)) if ids is None else ids
    return "id,label\n" + "".join(f"{i},{c}\n" for i, c in zip(ids, labels))


@pytest.fixture(scope="module")
def truth(full):
    out, batches, _ = full
    return out / "private", batches["test_batch"][b"labels"]


def test_accuracy_counts_matches_in_any_row_order(truth, tmp_path):
    private, labels = truth
    perfect = evaluate(tmp_path, private, rows(labels))
    assert overall(perfect) == {"accuracy": 1.0, "correct": 10, "total": 10}
    assert all(m["accuracy"] == 1.0 for m in perfect.values()) and perfect["test"]["total"] > 0
    order = list(reversed(range(10)))
    assert evaluate(tmp_path, private, rows([labels[i] for i in order], order)) == perfect
    wrong = [(c + 1) % 10 for c in labels[:3]] + labels[3:]
    assert overall(evaluate(tmp_path, private, rows(wrong)))["accuracy"] == 0.7
    extra = "id,label,confidence\n" + "".join(f" {i} , {c} ,0.5\n" for i, c in enumerate(labels))
    assert evaluate(tmp_path, private, extra) == perfect  # spaces and extra columns are fine


def test_lite_splits_the_hidden_labels_into_dev_and_test(tmp_path):
    """About a fifth of the 1000 test images score the dev split (validate), the rest the test split."""
    assert prepare(tmp_path / "lite", "lite", None).returncode == 0
    labels = [int(line.split(",")[1]) for line in (tmp_path / "lite" / "private" / "answers.csv").read_text().split()[1:]]
    result = evaluate(tmp_path, tmp_path / "lite" / "private", rows(labels))
    assert set(result) == {"dev", "test"} and result["dev"]["total"] + result["test"]["total"] == 1000
    assert 150 <= result["dev"]["total"] <= 250


@pytest.mark.parametrize("content, reason", [
    (rows([0] * 9), "expected 10 rows, got 9"),
    (rows([0] * 11), "unknown id"),
    (rows([0] * 10, [0, 1, 2, 3, 4, 5, 6, 7, 8, 8]), "duplicate id"),
    (rows([0] * 10, range(1, 11)), "unknown id"),
    (rows([0] * 10, [0, 1, 2, 3, 4, 5, 6, 7, 8, "x"]), "id must be an integer"),
    (rows([0] * 9 + ["nan"]), "label must be an integer"),
    (rows([0] * 9 + [""]), "label must be an integer"),
    (rows([0] * 9 + ["3.0"]), "label must be an integer"),
    (rows([0] * 9 + ["1.5"]), "label must be an integer"),
    (rows([0] * 9 + ["cat"]), "label must be an integer"),
    (rows([0] * 9 + [10]), "outside 0..9"),
    (rows([0] * 9 + [-1]), "outside 0..9"),
    (rows([0] * 9 + ["99999999999999999999999"]), "outside 0..9"),
    ("id;label\n" + "".join(f"{i};0\n" for i in range(10)), "missing column"),
    ("id,label\n" + "".join(f"{i},0\n" for i in range(9)) + "9,\xe9\n", "label must be an integer"),
    ("id,prediction\n" + "".join(f"{i},0\n" for i in range(10)), "missing column"),
    ("id,label\n" + "".join(f"{i},0\n" for i in range(9)) + "9\n", "line 11: 1 field(s), the header has 2"),
    ("id,label\n" + "".join(f"{i},0,7,7\n" for i in range(10)), "line 2: 4 field(s), the header has 2"),
])
def test_malformed_submissions_are_invalid_with_a_reason(truth, tmp_path, content, reason):
    private, _ = truth
    assert reason in evaluate(tmp_path, private, content)["invalid"]
