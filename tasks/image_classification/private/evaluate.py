"""Score an image-classification submission: accuracy of predicted class indices.

Usage: python evaluate.py ARTEFACT   (env: MLGYM_PRIVATE_DATA = folder holding answers.csv)

ARTEFACT is a CSV with header id,label: one row per test image (id = row index in
data/test_images.npy), label an integer class index 0..9. Extra columns are ignored;
every row must have as many fields as the header.
Last stdout line is one JSON object: {"accuracy": ..., "correct": ..., "total": ...} or
{"invalid": "reason"}. Exit status is 0 for any artefact, however broken; only a missing
answers file (an engine set-up error, not the agent's fault) exits non-zero.
"""
import csv
import io
import json
import os
import re
import sys

NUM_CLASSES = 10
MAX_BYTES = 20 * 1024 * 1024  # a valid submission is ~100 KB at most; refuse absurd files early
INTEGER = re.compile(r"^[+-]?[0-9]+$")


class Invalid(Exception):
    pass


def load_answers():
    private = os.environ.get("MLGYM_PRIVATE_DATA")
    path = os.path.join(private or "", "answers.csv")
    if not private or not os.path.isfile(path):
        print(f"evaluate.py: answers not found (MLGYM_PRIVATE_DATA={private!r})", file=sys.stderr)
        sys.exit(2)
    import numpy as np
    ans = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)  # id,label
    return ans[:, 0], ans[:, 1]


def integers(cells, name):
    """Parse text cells that must hold plain integers ("3", not "3.0", "nan" or "")."""
    for i, cell in enumerate(cells):
        if not INTEGER.match(cell.strip()):
            raise Invalid(f"non-integer {name} in data row {i + 1}: {cell!r}")
    return [int(cell) for cell in cells]


def read_rows(path):
    """The CSV's header and data rows; every row must have as many fields as the header."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Invalid(f"unreadable CSV: not UTF-8 text ({e.reason} at byte {e.start})")
    if "\0" in text:
        raise Invalid("unreadable CSV: contains NUL bytes")
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]  # skip blank lines
    except csv.Error as e:
        raise Invalid(f"unreadable CSV: {e}")
    if not rows:
        raise Invalid("unreadable CSV: the file is empty")
    header = [c.strip() for c in rows[0]]
    for i, r in enumerate(rows[1:]):
        if len(r) != len(header):
            raise Invalid(f"unreadable CSV: data row {i + 1} has {len(r)} fields, the header has {len(header)}")
    return header, rows[1:]


def load_submission(path, answer_ids):
    import numpy as np

    if os.path.islink(path):
        raise Invalid(f"{path} is a symbolic link; write a regular file")
    if not os.path.exists(path):
        raise Invalid(f"{path} not found")
    if not os.path.isfile(path):
        raise Invalid(f"{path} is not a regular file")
    if os.path.getsize(path) > MAX_BYTES:
        raise Invalid(f"{path} is larger than {MAX_BYTES} bytes")
    header, rows = read_rows(path)
    missing = [c for c in ("id", "label") if c not in header]
    if missing:
        raise Invalid(f"missing column(s) {missing}; need the header id,label")
    if len(rows) != len(answer_ids):
        raise Invalid(f"expected {len(answer_ids)} rows (one per test image), got {len(rows)}")

    ids = np.array(integers([r[header.index("id")] for r in rows], "id"), dtype=object)
    if len(set(ids)) != len(ids):
        raise Invalid(f"{len(ids) - len(set(ids))} duplicate id(s)")
    known = set(answer_ids.tolist())
    extra = [i for i in ids if i not in known]
    if extra:
        raise Invalid(f"{len(extra)} unknown id(s), e.g. {extra[0]}; ids are 0..{len(answer_ids) - 1}")
    # With as many unique ids as answers and none unknown, every test id is present.

    labels = integers([r[header.index("label")] for r in rows], "label")
    for i, c in zip(ids, labels):
        if not 0 <= c < NUM_CLASSES:
            raise Invalid(f"label outside 0..{NUM_CLASSES - 1} for id {i}: {c}")
    by_id = dict(zip(ids, labels))
    return np.array([by_id[i] for i in answer_ids.tolist()], dtype=np.int64)  # in answer order


def main():
    if len(sys.argv) != 2:
        print(json.dumps({"invalid": "usage: evaluate.py ARTEFACT"}))
        return
    answer_ids, truth = load_answers()
    try:
        pred = load_submission(sys.argv[1], answer_ids)
        correct = int((pred == truth).sum())
        print(json.dumps({"accuracy": round(correct / len(truth), 6), "correct": correct, "total": len(truth)}))
    except Invalid as e:
        print(json.dumps({"invalid": str(e)}))
    except Exception as e:  # never crash on a bad artefact
        print(json.dumps({"invalid": f"could not score: {type(e).__name__}: {e}"[:300].replace(chr(10), ' ')}))


if __name__ == "__main__":
    main()
