"""image_classification_small: the Fashion-MNIST idx loader (on a tiny fixture in the original
idx.gz layout), the lite data, the baseline and reference on it, and the evaluator's handling of
bad submissions.

prepare.py and the evaluator run as the harness runs them: subprocesses, the evaluator in a
scratch folder holding the artefact, its last stdout line being one JSON object.
"""
from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_mlgym.testing.scripts import evaluator_result, run_prepare

TASK = Path(__file__).resolve().parents[1]
NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


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


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx format: 0x0000, type 0x08 (unsigned byte), ndim, big-endian uint32 sizes, data."""
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_fashion(root: Path, n_train: int = 120, n_test: int = 12) -> dict:
    folder = root / "image_classification_small"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8)}
    for name, a in arrays.items():
        (folder / name).write_bytes(gzip.compress(idx_bytes(a), mtime=0))
    return arrays


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The tiny Fashion-MNIST fixture, prepared at the full size: (out folder, raw arrays, data root)."""
    root = tmp_path_factory.mktemp("mlgym_data")
    arrays = write_fashion(root)
    out = tmp_path_factory.mktemp("full")
    proc = prepare(out, "full", root)
    assert proc.returncode == 0, proc.stderr
    return out, arrays, root


def test_full_size_reads_the_idx_files(full, tmp_path):
    out, arrays, root = full
    pub = out / "public"
    x, y = np.load(pub / "train_images.npy"), np.load(pub / "train_labels.npy")
    xv, yv = np.load(pub / "val_images.npy"), np.load(pub / "val_labels.npy")
    xt = np.load(pub / "test_images.npy")
    assert x.shape == (110, 28, 28) and xv.shape == (10, 28, 28) and xt.shape == (12, 28, 28)
    assert x.dtype == xt.dtype == np.uint8 and y.dtype == yv.dtype == np.int64
    assert json.loads((pub / "classes.json").read_text())[::9] == ["T-shirt/top", "Ankle boot"]

    # The test set is t10k in its original order; its labels are the hidden answers.
    assert np.array_equal(xt, arrays["t10k-images-idx3-ubyte.gz"])
    answers = (out / "private" / "answers.csv").read_text().splitlines()
    assert answers == ["id,label"] + [f"{i},{c}" for i, c in enumerate(arrays["t10k-labels-idx1-ubyte.gz"])]

    # Train + validation are exactly the training images, each with its own label.
    raw_x, raw_y = arrays["train-images-idx3-ubyte.gz"], arrays["train-labels-idx1-ubyte.gz"]
    index = {img.tobytes(): i for i, img in enumerate(raw_x)}
    rows = [index[img.tobytes()] for img in np.concatenate([x, xv])]
    assert sorted(rows) == list(range(120))
    assert np.concatenate([y, yv]).tolist() == raw_y[rows].tolist()

    again = tmp_path / "again"  # same bytes on a second run
    assert prepare(again, "full", root).returncode == 0
    for f in sorted(pub.iterdir()) + [out / "private" / "answers.csv"]:
        assert (again / f.relative_to(out)).read_bytes() == f.read_bytes(), f.name


def test_full_size_without_data_exits_3_saying_where_to_put_it(tmp_path):
    partial = tmp_path / "partial"
    (partial / "image_classification_small").mkdir(parents=True)
    (partial / "image_classification_small" / NAMES[0]).write_bytes(b"")
    for data_dir in (tmp_path, partial):
        proc = prepare(tmp_path / "out", "full", data_dir)
        assert proc.returncode == 3
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "image_classification_small/" in lines[0]
        assert all(n in lines[0] for n in NAMES)
    proc = prepare(tmp_path / "out", "full", None)  # no MLGYM_DATA_DIR at all
    assert proc.returncode == 3 and proc.stderr.strip().splitlines() == [
        "image_classification_small (full): set MLGYM_DATA_DIR to a folder holding image_classification_small/ "
        "(see tasks/image_classification_small/workspace/README.md for its layout)"]


def test_a_corrupt_idx_file_fails_with_a_clear_error(tmp_path):
    root = tmp_path / "data"
    write_fashion(root)
    labels = root / "image_classification_small" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + b"\0" * 12))  # an images header on a labels file
    proc = prepare(tmp_path / "out", "full", root)
    assert proc.returncode not in (0, 3) and "not an idx file of 1-d unsigned bytes" in proc.stderr
    labels.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 50) + b"\1" * 12))  # truncated
    proc = prepare(tmp_path / "out2", "full", root)
    assert proc.returncode not in (0, 3) and "holds 12 bytes" in proc.stderr


def test_lite_size_is_sklearn_digits_on_a_0_255_scale(tmp_path):
    assert prepare(tmp_path / "a", "lite", None).returncode == 0
    pub = tmp_path / "a" / "public"
    x = np.load(pub / "train_images.npy")
    assert x.shape == (1079, 8, 8) and x.dtype == np.uint8 and x.max() == 255
    assert np.load(pub / "val_images.npy").shape == np.load(pub / "test_images.npy").shape == (359, 8, 8)
    assert len((tmp_path / "a" / "private" / "answers.csv").read_text().splitlines()) == 360


@pytest.mark.parametrize("script", ["baseline.py", "solution.py"])
def test_baseline_and_reference_run_on_full_size_images(full, tmp_path, script):
    out, *_ = full
    ws = tmp_path / "ws"
    shutil.copytree(TASK / "workspace", ws)
    shutil.copy(TASK / "reference" / "solution.py", ws)
    shutil.copytree(out / "public", ws / "data")
    proc = subprocess.run([sys.executable, script], cwd=ws, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = evaluate(ws, out / "private")
    assert overall(result)["total"] == 12 and 0 <= result["test"]["accuracy"] <= 1


def rows(labels, ids=None) -> str:
    ids = range(len(labels)) if ids is None else ids
    return "id,label\n" + "".join(f"{i},{c}\n" for i, c in zip(ids, labels))


@pytest.fixture(scope="module")
def truth(full):
    out, arrays, _ = full
    return out / "private", arrays["t10k-labels-idx1-ubyte.gz"].tolist()


def test_accuracy_counts_matches_in_any_row_order(truth, tmp_path):
    private, labels = truth
    perfect = evaluate(tmp_path, private, rows(labels))
    assert overall(perfect) == {"accuracy": 1.0, "correct": 12, "total": 12}
    order = list(reversed(range(12)))
    assert evaluate(tmp_path, private, rows([labels[i] for i in order], order)) == perfect
    wrong = [(c + 1) % 10 for c in labels[:3]] + labels[3:]
    assert overall(evaluate(tmp_path, private, rows(wrong)))["accuracy"] == 0.75


@pytest.mark.parametrize("content, reason", [
    (rows([0] * 11), "expected 12 rows, got 11"),
    (rows([0] * 12, list(range(11)) + [0]), "duplicate id"),
    (rows([0] * 12, range(1, 13)), "unknown id"),
    (rows([0] * 12, list(range(11)) + [1.0]), "id must be an integer"),
    (rows([0] * 11 + ["nan"]), "label must be an integer"),
    (rows([0] * 11 + ["2.0"]), "label must be an integer"),
    (rows([0] * 11 + [12]), "outside 0..9"),
    ("label,id\n" + "".join(f"0,{i}\n" for i in range(12)), None),  # column order does not matter
    ("id\n" + "".join(f"{i}\n" for i in range(12)), "missing column"),
    ("id,label\n" + "".join(f"{i},0,\n" for i in range(12)), "3 field(s), the header has 2"),
])
def test_malformed_submissions_are_invalid_with_a_reason(truth, tmp_path, content, reason):
    private, _ = truth
    result = evaluate(tmp_path, private, content)
    if reason is None:
        assert "accuracy" in result["test"]
    else:
        assert reason in result["invalid"]
