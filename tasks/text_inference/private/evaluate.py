"""Score a text_inference submission: accuracy of the predicted class indices.

ARTEFACT is a CSV with header id,label: one row per id of data/test.csv, label an integer class
index (0..1 lite, 0..2 full: as many as the hidden labels.json names); extra columns are ignored.
The hidden test labels are split into dev (what validate shows) and test rows; see
pytest_mlgym.sdk.families.classification.
"""
import json

from pytest_mlgym.sdk import evaluator
from pytest_mlgym.sdk.families import classification


def score(ctx: evaluator.Context) -> dict:
    n_classes = len(json.loads(ctx.private("labels.json").read_text()))
    return classification.score(ctx, n_classes=n_classes)


if __name__ == "__main__":
    evaluator.run(score)
