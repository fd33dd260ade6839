"""Baseline for the Ames house-price task: one-hot encoding + Ridge regression.

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

TARGET = "Sale_Price"

train = pd.read_csv("data/train.csv")
val = pd.read_csv("data/validation.csv")
test = pd.read_csv("data/test.csv")

features = [c for c in train.columns if c not in ("Id", TARGET)]
numeric = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
categorical = [c for c in features if c not in numeric]

model = make_pipeline(
    ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore")), categorical),
    ]),
    Ridge(alpha=10.0),
)

model.fit(train[features], train[TARGET])
print(f"validation R^2: {r2_score(val[TARGET], model.predict(val[features])):.4f}")

pd.DataFrame({"Id": test["Id"], TARGET: model.predict(test[features])}).to_csv(
    "submission.csv", index=False)
print("wrote submission.csv")
