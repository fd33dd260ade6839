"""Score an image-classification submission: accuracy of the predicted class indices.

ARTEFACT is a CSV with header id,label: one row per test image (id = row index in
data/test_images.npy), label an integer class index 0..9; extra columns are ignored. The
hidden test labels are split into dev (what validate shows) and test rows; see
pytest_mlgym.sdk.families.classification.
"""
from pytest_mlgym.sdk import evaluator
from pytest_mlgym.sdk.families import classification

NUM_CLASSES = 10


def score(ctx: evaluator.Context) -> dict:
    return classification.score(ctx, n_classes=NUM_CLASSES)


if __name__ == "__main__":
    evaluator.run(score)
