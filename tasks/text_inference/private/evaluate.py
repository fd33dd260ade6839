"""Score a text_inference submission.

Usage: python evaluate.py ARTEFACT   (env: MLGYM_PRIVATE_DATA = folder holding answers.csv, labels.json)

Last stdout line is one JSON object: {"accuracy": ...} (a fraction, 0-1) or {"invalid": "reason"}.
Exit status is 0 for any artefact, however broken; only missing answers (an engine set-up
error, not the agent's fault) exit non-zero.
"""
import json
import os
import sys
import warnings

MAX_BYTES = 50 * 1024 * 1024  # a valid submission is ~10 KB (lite) or ~100 KB (full)


class Invalid(Exception):
    pass


def load_answers():
    private = os.environ.get("MLGYM_PRIVATE_DATA") or ""
    paths = [os.path.join(private, n) for n in ("answers.csv", "labels.json")]
    if not private or not all(os.path.isfile(p) for p in paths):
        print(f"evaluate.py: answers not found (MLGYM_PRIVATE_DATA={private!r})", file=sys.stderr)
        sys.exit(2)
    import pandas as pd
    ans = pd.read_csv(paths[0])
    with open(paths[1]) as f:
        n_classes = len(json.load(f))
    return ans["id"].to_numpy("int64"), ans["label"].to_numpy("int64"), n_classes


def integers(sub, col, what):
    """Column `col` as int64; raise Invalid naming the first cell that is not a plain integer."""
    import numpy as np
    cells = sub[col].fillna("").astype(str).str.strip()
    bad = ~cells.str.fullmatch(r"[+-]?[0-9]+")  # text, empty cells, NaN, inf, "1.0", "0.5" ...
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise Invalid(f"{int(bad.sum())} non-integer {what}, e.g. data row {i + 1}: {sub[col].iloc[i]!r}")
    # Huge values are clipped, not overflowed: they stay out of range (or unknown) and get reported.
    return np.array([max(-2**62, min(2**62, int(c))) for c in cells], dtype="int64")


def load_submission(path, answer_ids, n_classes):
    import numpy as np
    import pandas as pd

    if os.path.islink(path):
        raise Invalid(f"{path} is a symbolic link; write a regular file")
    if not os.path.exists(path):
        raise Invalid(f"{path} not found")
    if not os.path.isfile(path):
        raise Invalid(f"{path} is not a regular file")
    if os.path.getsize(path) > MAX_BYTES:
        raise Invalid(f"{path} is larger than {MAX_BYTES} bytes")
    try:
        # Everything as text, converted below, so that bad cells are reported clearly; rows with
        # more cells than the header are an error (pandas would otherwise shift the columns).
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sub = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except Exception as e:  # empty file, binary junk, ragged rows, bad encoding ...
        msg = str(e).splitlines()[0] if str(e) else ""
        raise Invalid(f"unreadable CSV: {type(e).__name__}: {msg}")
    sub.columns = [str(c).strip() for c in sub.columns]
    missing = [c for c in ("id", "label") if c not in sub.columns]
    if missing:
        raise Invalid(f"missing column(s) {missing}; need id,label")
    if len(sub) != len(answer_ids):
        raise Invalid(f"expected {len(answer_ids)} rows (one per test id), got {len(sub)}")

    ids = integers(sub, "id", "id(s)")
    if len(np.unique(ids)) != len(ids):
        raise Invalid("duplicate ids")
    extra = np.setdiff1d(ids, answer_ids)
    if len(extra):
        raise Invalid(f"{len(extra)} unknown id(s), e.g. {int(extra[0])}")
    labels = integers(sub, "label", "label(s)")
    out = (labels < 0) | (labels >= n_classes)
    if out.any():
        i = int(np.argmax(out))
        raise Invalid(f"{int(out.sum())} label(s) outside 0..{n_classes - 1}, e.g. id {ids[i]}: {labels[i]}")
    return pd.Series(labels, index=ids).loc[answer_ids].to_numpy()  # aligned with the answers


def main():
    if len(sys.argv) != 2:
        print(json.dumps({"invalid": "usage: evaluate.py ARTEFACT"}))
        return
    answer_ids, y, n_classes = load_answers()
    try:
        pred = load_submission(sys.argv[1], answer_ids, n_classes)
        print(json.dumps({"accuracy": round(float((pred == y).mean()), 6)}))
    except Invalid as e:
        print(json.dumps({"invalid": str(e)}))
    except Exception as e:  # never crash on a bad artefact
        print(json.dumps({"invalid": " ".join(f"could not score: {type(e).__name__}: {e}".split())[:300]}))


if __name__ == "__main__":
    main()
