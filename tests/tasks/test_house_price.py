"""house_price: the full-size loader on a tiny fixture in Kaggle's layout; lite determinism."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

TASK = Path(__file__).resolve().parents[2] / "tasks" / "house_price"


def prepare(size, out, env=None):
    return subprocess.run([sys.executable, str(TASK / "prepare.py"), "--size", size, "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=TASK)


def kaggle_fixture(root: Path, n: int = 60) -> None:
    import pandas as pd  # here, not at collection: pandas is ~300 modules

    rng = np.random.default_rng(0)
    area = rng.integers(600, 3000, n)
    area[0] = 4500  # an outlier the loader must drop
    frame = pd.DataFrame({"Id": np.arange(1, n + 1), "MSZoning": rng.choice(["RL", "RM", "NA"], n),
                          "GrLivArea": area, "LotFrontage": ["NA"] * 3 + list(rng.integers(20, 90, n - 3)),
                          "SalePrice": area * 100 + rng.integers(0, 5000, n)})
    (root / "house_price").mkdir(parents=True)
    frame.to_csv(root / "house_price" / "train.csv", index=False)


def test_full_size_reads_kaggle_train_csv(tmp_path):
    import pandas as pd

    kaggle_fixture(tmp_path / "data")
    env = {"MLGYM_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    result = prepare("full", tmp_path / "out", env)
    assert result.returncode == 0, result.stderr
    train = pd.read_csv(tmp_path / "out" / "public" / "train.csv")
    test = pd.read_csv(tmp_path / "out" / "public" / "test.csv")
    answers = pd.read_csv(tmp_path / "out" / "private" / "answers.csv")
    val = pd.read_csv(tmp_path / "out" / "public" / "validation.csv")
    assert len(train) + len(val) + len(test) == 59  # the 4500 sq ft house is dropped
    assert "Sale_Price" in train and "Sale_Price" not in test and list(answers.columns) == ["Id", "Sale_Price"]
    assert sorted(answers.Id) == sorted(test.Id)
    assert pd.api.types.is_numeric_dtype(train["LotFrontage"])  # "NA" cells are missing numbers
    again = prepare("full", tmp_path / "again", env)
    assert again.returncode == 0
    for name in ("public/train.csv", "public/test.csv", "private/answers.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_full_size_without_data_exits_3_saying_what_to_put_where(tmp_path):
    result = prepare("full", tmp_path / "out", {"MLGYM_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "put Kaggle's 'House Prices - Advanced Regression Techniques' train.csv (1460 rows, with SalePrice) "
        "at $MLGYM_DATA_DIR/house_price/train.csv"]
