"""house_price: the full-size loader (MLGym-Bench's split of Kaggle's train.csv, on a tiny fixture
in Kaggle's layout), lite determinism, the sealed dev/test split, and generated CSV submissions
through the real trusted evaluator (moved here from tests/security/test_bad_input.py)."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pytest_mlgym.evaluation import Evaluation, run_evaluator
from pytest_mlgym.task import load_task

TASK = Path(__file__).resolve().parents[1]


def prepare(size, out, env=None):
    return subprocess.run([sys.executable, str(TASK / "prepare.py"), "--size", size, "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=TASK)


def kaggle_fixture(root: Path, n: int = 60):
    import pandas as pd  # here, not at collection: pandas is ~300 modules

    rng = np.random.default_rng(0)
    area = rng.integers(600, 3000, n)
    area[0] = 4500  # an outlier MLGym keeps (and so do we, at the full size)
    frame = pd.DataFrame({"Id": np.arange(1, n + 1), "MSZoning": rng.choice(["RL", "RM", "NA"], n),
                          "GrLivArea": area, "LotFrontage": ["NA"] * 3 + list(rng.integers(20, 90, n - 3)),
                          "SalePrice": area * 100 + rng.integers(0, 5000, n)})
    (root / "house_price").mkdir(parents=True)
    frame.to_csv(root / "house_price" / "train.csv", index=False)
    return frame


def env_with(data_dir: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLGYM_DATA_DIR"}
    return env if data_dir is None else {**env, "MLGYM_DATA_DIR": str(data_dir)}


def test_full_size_is_mlgyms_split_of_kaggle_train_csv(tmp_path):
    import pandas as pd

    source = kaggle_fixture(tmp_path / "data")
    env = env_with(tmp_path / "data")
    result = prepare("full", tmp_path / "out", env)
    assert result.returncode == 0, result.stderr
    train = pd.read_csv(tmp_path / "out" / "public" / "train.csv")
    test = pd.read_csv(tmp_path / "out" / "public" / "test.csv")
    answers = pd.read_csv(tmp_path / "out" / "private" / "answers.csv")
    val = pd.read_csv(tmp_path / "out" / "public" / "validation.csv")
    # MLGym's proportions (20% test, then 12.5% of the rest validation), every row kept, Kaggle's Ids
    assert (len(train), len(val), len(test)) == (42, 6, 12)
    assert sorted(pd.concat([train.Id, val.Id, test.Id])) == list(range(1, 61))
    assert "Sale_Price" in train and "Sale_Price" not in test and list(answers.columns) == ["Id", "Sale_Price"]
    assert answers.Id.tolist() == test.Id.tolist()
    assert answers.Sale_Price.tolist() == source.set_index("Id").loc[test.Id, "SalePrice"].tolist()
    assert pd.api.types.is_numeric_dtype(train["LotFrontage"])  # "NA" cells are missing numbers
    # the rows are shuffled as scikit-learn's train_test_split(random_state=42) shuffles them
    from sklearn.model_selection import train_test_split

    rest, held_out = train_test_split(source, test_size=0.2, random_state=42)
    assert test.Id.tolist() == held_out.Id.tolist()
    assert val.Id.tolist() == train_test_split(rest, test_size=0.125, random_state=42)[1].Id.tolist()
    again = prepare("full", tmp_path / "again", env)
    assert again.returncode == 0
    for name in ("public/train.csv", "public/validation.csv", "public/test.csv", "private/answers.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_full_size_without_data_exits_3_saying_what_to_put_where(tmp_path):
    result = prepare("full", tmp_path / "out", env_with(tmp_path))
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "house_price (full): put Kaggle's 'House Prices - Advanced Regression Techniques' train.csv (1460 rows, "
        "with SalePrice; MLGym ships it as data/regressionKaggleHousePrice/_helpers/train.csv) at "
        f"{tmp_path}/house_price/train.csv"]
    result = prepare("full", tmp_path / "out", env_with(None))
    assert result.returncode == 3 and "set MLGYM_DATA_DIR" in result.stderr


# -- the evaluator: both splits, one run -------------------------------------------------------------
@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    out = tmp_path_factory.mktemp("lite")
    assert prepare("lite", out).returncode == 0
    return out


def evaluate(folder: Path, private: Path, content: str) -> dict:
    (folder / "submission.csv").write_text(content)
    proc = subprocess.run([sys.executable, str(TASK / "private" / "evaluate.py"), "submission.csv"], cwd=folder,
                          env={**os.environ, "MLGYM_PRIVATE_DATA": str(private), "MLGYM_SEED": "0"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def answers(private: Path) -> list[list[str]]:
    return list(csv.reader((private / "answers.csv").read_text().splitlines()))[1:]


def test_dev_and_test_are_scored_on_disjoint_hidden_rows(lite, tmp_path):
    from pytest_mlgym.sdk.evaluator import Context

    rows = answers(lite / "private")
    masks = Context(tmp_path, "lite", 0, TASK, lite / "private", None).row_splits([int(i) for i, _ in rows])
    assert 0.15 < masks["dev"].mean() < 0.25 and not (masks["dev"] & masks["test"]).any()
    exact = evaluate(tmp_path, lite / "private", "Id,Sale_Price\n" + "".join(f"{i},{p}\n" for i, p in rows))
    assert exact == {"dev": {"r2": 1.0, "rmse": 0.0}, "test": {"r2": 1.0, "rmse": 0.0}}
    # exact on the dev rows, off by 1000 on the test rows: each split sees only its own rows
    off = [(i, float(p) + (1000 * masks["test"][k])) for k, (i, p) in enumerate(rows)]
    result = evaluate(tmp_path, lite / "private", "Id,Sale_Price\n" + "".join(f"{i},{p}\n" for i, p in off))
    assert result["dev"] == {"r2": 1.0, "rmse": 0.0} and result["test"]["rmse"] == 1000.0


@pytest.mark.parametrize("change, reason", [
    (lambda rows: rows[:-1], "expected 439 rows, got 438"),
    (lambda rows: rows + [rows[0]], "duplicate Id"),
    (lambda rows: [["1.5", rows[0][1]]] + rows[1:], "Id must be an integer"),
    (lambda rows: [[rows[0][0], "nan"]] + rows[1:], "Sale_Price must be finite"),
    (lambda rows: [[rows[0][0], "1e200"]] + rows[1:], "the squared error overflows"),
    (lambda rows: [[rows[0][0], "cheap"]] + rows[1:], "Sale_Price must be a number"),
    (lambda rows: [["999999", rows[0][1]]] + rows[1:], "unknown Id"),
])
def test_malformed_submissions_are_invalid_with_a_reason(lite, tmp_path, change, reason):
    rows = change(answers(lite / "private"))
    result = evaluate(tmp_path, lite / "private", "Id,Sale_Price\n" + "".join(f"{i},{p}\n" for i, p in rows))
    assert reason in result["invalid"], result


# -- generated CSV submissions through the harness's evaluator run ----------------------------------
def cheap(n: int):
    """``n`` reproducible examples, no deadline (evaluators start processes), no example database."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=False,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                           HealthCheck.large_base_example])


def score(task, prepared, write) -> Evaluation:
    """Write an artefact with ``write(path, scratch)``, score it as the harness does, check the outcome is clean."""
    scratch = Path(tempfile.mkdtemp(prefix="mlgym-bad-house_price-"))
    try:
        artefact = scratch / "submission.csv"
        write(artefact, scratch)
        ev = run_evaluator(task, "lite", artefact, prepared, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert isinstance(ev, Evaluation)
    if ev.valid:
        assert isinstance(ev.score, float) and math.isfinite(ev.score), ev
    else:
        assert isinstance(ev.reason, str) and ev.reason.strip() and len(ev.reason) < 600, ev
        assert len(ev.reason.splitlines()) == 1 and not ev.reason.rstrip().endswith(":"), repr(ev.reason)
        assert not ev.reason.startswith(("evaluator failed", "evaluator printed no JSON")), ev
    return ev


@pytest.fixture(scope="module")
def house_price(tmp_path_factory):
    task = load_task(TASK)
    prepared = task.prepare("lite", Path(os.environ.get("MLGYM_CACHE_DIR") or tmp_path_factory.mktemp("cache")))
    with open(prepared.private / "answers.csv", newline="") as f:
        ids = [row["Id"] for row in csv.DictReader(f)]
    return task, prepared, ids


NEUTRAL = ["shuffle", "pad", "crlf", "quote", "scientific"]  # a valid submission stays valid
BREAKING = ["drop_rows", "duplicate_row", "unknown_id", "bad_cell"]  # a submission becomes (and stays) invalid
WILD = ["random_header", "extra_column", "truncate", "garbage", "random_bytes", "empty", "huge_value", "bom",
        "latin1", "float_ids", "random_cell"]
BAD_CELLS = st.sampled_from(["nan", "NaN", "inf", "-Infinity", "", "abc", "1e999", "--1", "0x1A", "None", "NA",
                             "1.2.3", "#N/A"]) | st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True)


@cheap(30)
@given(data=st.data())
def test_generated_csv_submissions(house_price, data):
    task, prepared, ids = house_price
    rng_floats = st.floats(1e4, 1e6, allow_nan=False)
    rows = [[i, repr(data.draw(rng_floats, label="base")) if k == 0 else f"{150000 + 37 * k:.1f}"]
            for k, i in enumerate(ids)]
    header = ["Id", "Sale_Price"]
    kinds = data.draw(st.lists(st.sampled_from(NEUTRAL + BREAKING + WILD + NEUTRAL[:1]), max_size=4),
                      label="mutations")
    def pick() -> int:
        return data.draw(st.integers(0, max(len(rows) - 1, 0)))

    text_ops, byte_ops = [], []
    for kind in kinds:
        if not rows and kind in ("duplicate_row", "bad_cell", "huge_value", "random_cell", "unknown_id"):
            continue
        if kind == "shuffle":
            rows = data.draw(st.permutations(rows))
        elif kind == "pad":
            rows = [[f" {r[0]} ", f"\t{r[1]}  "] + r[2:] for r in rows]
        elif kind in ("crlf", "quote", "bom", "latin1"):
            text_ops.append(kind)
        elif kind == "scientific":
            rows = [[r[0], f"{float(r[1]):e}"] + r[2:] if _number(r[1]) else r for r in rows]
        elif kind == "drop_rows":
            for _ in range(data.draw(st.integers(1, 5))):
                if rows:
                    rows.pop(pick())
        elif kind == "duplicate_row":
            rows.append(list(rows[pick()]))
        elif kind == "unknown_id":
            rows[pick()][0] = str(data.draw(st.integers(10**6, 10**9) | st.integers(-10**6, 0)))
        elif kind == "bad_cell":
            rows[pick()][1] = data.draw(BAD_CELLS)
        elif kind == "random_header":
            header = data.draw(st.lists(st.text(max_size=10), max_size=4))
        elif kind == "extra_column":
            header = header + [data.draw(st.text(max_size=8))]
            rows = [r + [data.draw(st.text(max_size=5) | st.floats().map(repr))] for r in rows]
        elif kind in ("truncate", "garbage", "random_bytes", "empty"):
            byte_ops.append((kind, data.draw(st.floats(0, 1)), data.draw(st.binary(min_size=1, max_size=200))))
        elif kind == "huge_value":
            rows[pick()][1] = data.draw(st.sampled_from(["1e308", "-1.7e308", "1e200", "1e150", str(10**400)])
                                        | st.floats(allow_nan=False, allow_infinity=False).map(repr))
        elif kind == "float_ids":
            rows = [[f"{r[0]}.0"] + r[1:] for r in rows]
        elif kind == "random_cell":
            r = pick()
            rows[r][data.draw(st.integers(0, 1))] = data.draw(st.text(max_size=12))
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if "crlf" in text_ops else "\n",
               quoting=csv.QUOTE_ALL if "quote" in text_ops else csv.QUOTE_MINIMAL).writerows([header] + rows)
    text = ("\ufeff" if "bom" in text_ops else "") + out.getvalue()
    raw = text.encode("latin-1", "replace") if "latin1" in text_ops else text.encode("utf-8", "surrogatepass")
    for kind, where, junk in byte_ops:
        at = int(where * len(raw))
        if kind == "truncate":
            raw = raw[:at]
        elif kind == "garbage":
            raw = raw[:at] + junk + raw[at:]
        else:
            raw = junk if kind == "random_bytes" else b""
    ev = score(task, prepared, lambda path, _: path.write_bytes(raw))
    if any(k in WILD for k in kinds):
        return
    if any(k in BREAKING for k in kinds):
        assert not ev.valid, (kinds, ev)
    else:
        assert ev.valid and -10 < ev.score <= 1, (kinds, ev)


def _number(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False
