"""Score a house_price submission.

Usage: python evaluate.py ARTEFACT   (env: MLGYM_PRIVATE_DATA = folder holding answers.csv)

Last stdout line is one JSON object: {"r2": ..., "rmse": ...} or {"invalid": "reason"}.
Exit status is 0 for any artefact, however broken; only a missing answers file
(an engine set-up error, not the agent's fault) exits non-zero.
"""
import json
import math
import os
import sys

MAX_BYTES = 20 * 1024 * 1024  # a valid submission is ~10 KB; refuse absurd files early


class Invalid(Exception):
    pass


def load_answers():
    private = os.environ.get("MLGYM_PRIVATE_DATA")
    path = os.path.join(private or "", "answers.csv")
    if not private or not os.path.isfile(path):
        print(f"evaluate.py: answers not found (MLGYM_PRIVATE_DATA={private!r})", file=sys.stderr)
        sys.exit(2)
    import pandas as pd
    ans = pd.read_csv(path)
    return ans["Id"].to_numpy("int64"), ans["Sale_Price"].to_numpy("float64")


def load_submission(path, answer_ids):
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
        # Read everything as text and convert ourselves, so bad cells are reported clearly.
        sub = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:  # empty file, binary junk, ragged rows, bad encoding ...
        raise Invalid(f"unreadable CSV: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    sub.columns = [str(c).strip() for c in sub.columns]
    missing = [c for c in ("Id", "Sale_Price") if c not in sub.columns]
    if missing:
        raise Invalid(f"missing column(s) {missing}; need Id,Sale_Price")
    if len(sub) != len(answer_ids):
        raise Invalid(f"expected {len(answer_ids)} rows, got {len(sub)}")

    ids = pd.to_numeric(sub["Id"].str.strip(), errors="coerce").to_numpy("float64")
    if not np.all(np.isfinite(ids)) or np.any(ids != np.round(ids)):
        raise Invalid("Id column has non-integer values")
    ids = ids.astype("int64")
    if len(np.unique(ids)) != len(ids):
        raise Invalid("duplicate Ids")
    extra = np.setdiff1d(ids, answer_ids)
    if len(extra):
        raise Invalid(f"{len(extra)} unknown Id(s), e.g. {int(extra[0])}")
    lacking = np.setdiff1d(answer_ids, ids)
    if len(lacking):
        raise Invalid(f"{len(lacking)} test Id(s) missing, e.g. {int(lacking[0])}")

    pred = pd.to_numeric(sub["Sale_Price"].str.strip(), errors="coerce").to_numpy("float64")
    bad = ~np.isfinite(pred)  # catches text, empty cells, NaN and inf
    if bad.any():
        i = int(np.argmax(bad))
        raise Invalid(f"{int(bad.sum())} non-numeric/NaN/inf prediction(s), e.g. Id {ids[i]}: {sub['Sale_Price'].iloc[i]!r}")
    # Align predictions with the answer order.
    return pd.Series(pred, index=ids).loc[answer_ids].to_numpy()


def main():
    if len(sys.argv) != 2:
        print(json.dumps({"invalid": "usage: evaluate.py ARTEFACT"}))
        return
    answer_ids, y = load_answers()
    try:
        import numpy as np
        pred = load_submission(sys.argv[1], answer_ids)
        with np.errstate(over="ignore", invalid="ignore"):
            sse = float(np.sum((y - pred) ** 2))
        sst = float(np.sum((y - y.mean()) ** 2))
        r2, rmse = 1.0 - sse / sst, math.sqrt(sse / len(y))
        if not (math.isfinite(r2) and math.isfinite(rmse)):
            raise Invalid("predictions too large: error overflows")
        print(json.dumps({"r2": round(r2, 6), "rmse": round(rmse, 3)}))
    except Invalid as e:
        print(json.dumps({"invalid": str(e)}))
    except Exception as e:  # never crash on a bad artefact
        print(json.dumps({"invalid": f"could not score: {type(e).__name__}: {e}"[:300]}))


if __name__ == "__main__":
    main()
