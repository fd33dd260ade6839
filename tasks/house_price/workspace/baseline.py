"""Baseline for the Ames house-price task: one-hot encoding + Ridge regression.

The same model as MLGym-Bench's regressionKaggleHousePrice baseline (Ridge, alpha 0.1, on
standardised mean-imputed numbers and dense one-hot categories).

Fits on data/train.csv, reports R^2 on data/validation.csv, and writes
predictions for data/test.csv to submission.csv (columns Id, Sale_Price).
"""
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import numpy as np

TARGET = "Sale_Price"
ALPHA = 0.1  # Ridge regularisation strength
LOG_TARGET = False  # fit log(price) instead of price
NUMERIC_IMPUTE = "mean"  # how missing numeric values are filled: median or mean

train = pd.read_csv("data/train.csv")
val = pd.read_csv("data/validation.csv")
test = pd.read_csv("data/test.csv")

features = [c for c in train.columns if c not in ("Id", TARGET)]
numeric = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
categorical = [c for c in features if c not in numeric]

model = make_pipeline(
    ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy=NUMERIC_IMPUTE), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)), categorical),
    ]),
    Ridge(alpha=ALPHA),
)

model.fit(train[features], np.log(train[TARGET]) if LOG_TARGET else train[TARGET])


def predict(frame):
    y = model.predict(frame[features])
    return np.exp(y) if LOG_TARGET else y


print(f"validation R^2: {r2_score(val[TARGET], predict(val)):.4f}")

pd.DataFrame({"Id": test["Id"], TARGET: predict(test)}).to_csv(
    "submission.csv", index=False)
print("wrote submission.csv")
