"""Score a house_price submission: R^2 (and RMSE) of the predicted sale prices.

ARTEFACT is a CSV with header Id,Sale_Price: one row per Id of data/test.csv, in any order,
each prediction a finite number; extra columns are ignored. The hidden test prices are split
into dev rows (what validate shows) and test rows (recorded), each scored on its own.
"""
import math

import numpy as np

from pytest_mlgym.sdk import Invalid, evaluator, readers


def score(ctx: evaluator.Context) -> dict:
    answers = np.loadtxt(ctx.private("answers.csv"), delimiter=",", skiprows=1, ndmin=2)  # Id,Sale_Price
    ids, y = answers[:, 0].astype(np.int64).tolist(), answers[:, 1]
    table = readers.csv_table(ctx.artefact, id_column="Id", columns={"Id": int, "Sale_Price": float}, ids=ids,
                              extra_columns=True)
    pred = np.asarray(table["Sale_Price"], dtype=np.float64)
    out = {}
    for split, mask in ctx.row_splits(ids).items():
        with np.errstate(over="ignore", invalid="ignore"):
            sse = float(np.sum((y[mask] - pred[mask]) ** 2))
        sst = float(np.sum((y[mask] - y[mask].mean()) ** 2))
        if not math.isfinite(sse):
            raise Invalid("predictions too large: the squared error overflows")
        out[split] = {"r2": round(1.0 - sse / sst, 6), "rmse": round(math.sqrt(sse / mask.sum()), 3)}
    return out


if __name__ == "__main__":
    evaluator.run(score)
