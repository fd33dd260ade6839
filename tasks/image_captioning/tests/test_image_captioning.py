"""image_captioning: the MS-COCO loader (on a tiny fixture in the original 2014 layout: caption
json files + JPEGs written with Pillow), the generated lite data, the baseline on JPEG input,
the dev/test split of the hidden images, and the evaluator's handling of bad submissions.

prepare.py and the evaluator run as the harness runs them: subprocesses, the evaluator in a
scratch folder holding the artefact, its last stdout line being one JSON object.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_mlgym.testing.scripts import run_prepare

TASK = Path(__file__).resolve().parents[1]
WORDS = "a man dog cat sits on the red bench near small table with two people riding horse".split()


def prepare(out: Path, size: str, data_dir: Path | None) -> subprocess.CompletedProcess:
    return run_prepare(TASK, out, size, data_dir)


def evaluate(folder: Path, private: Path, content: str | None = None, split: str | None = "test") -> dict:
    """The evaluator's result: one split's metrics (``split=None``: the whole line), or ``{"invalid": ...}``."""
    if content is not None:
        (folder / "submission.csv").write_text(content)
    proc = subprocess.run([sys.executable, str(TASK / "private" / "evaluate.py"), "submission.csv"], cwd=folder,
                          env={**os.environ, "MLGYM_PRIVATE_DATA": str(private), "MLGYM_SEED": "0"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "invalid" in result:
        assert result["invalid"] and "\n" not in result["invalid"]
        return result
    assert set(result) == {"dev", "test"}, result
    return result if split is None else result[split]


def write_coco(root: Path, n_train: int = 3, n_val: int = 6) -> dict:
    """COCO 2014 captions layout: annotations/captions_{split}.json + {split}/COCO_{split}_<12-digit id>.jpg.

    Returns {split: {image id: [captions in annotation-id order]}} as the loader should read them.
    """
    from PIL import Image

    base = root / "image_captioning"
    (base / "annotations").mkdir(parents=True)
    rng = np.random.default_rng(3)
    expected, ann_id = {}, 1000
    for split, n in (("train2014", n_train), ("val2014", n_val)):
        (base / split).mkdir()
        images, anns, caps = [], [], {}
        for k in range(n):
            image_id = int(rng.integers(1, 600000)) * 10 + k  # distinct, unordered ids like COCO's
            name = f"COCO_{split}_{image_id:012d}.jpg"
            pixels = rng.integers(0, 256, (int(rng.integers(8, 20)), int(rng.integers(8, 20)), 3), dtype=np.uint8)
            Image.fromarray(pixels).save(base / split / name, quality=90)  # odd sizes, not square
            images.append({"id": image_id, "file_name": name, "height": pixels.shape[0], "width": pixels.shape[1]})
            caps[image_id] = []
            for j in range(5 + k % 3):  # 5-7 captions, like COCO
                words = " ".join(rng.choice(WORDS, int(rng.integers(4, 9))))
                ann_id += int(rng.integers(1, 50))
                raw = f"A {words}.\n" if j == 0 else f"  {words}  "  # stray newlines and spaces, as in COCO
                anns.append({"id": ann_id, "image_id": image_id, "caption": raw})
                caps[image_id].append(" ".join(raw.split()))
        rng.shuffle(anns)  # annotations are not grouped by image in the real files
        info = {"info": {"year": 2014}, "licenses": [], "images": images, "annotations": anns}
        (base / "annotations" / f"captions_{split}.json").write_text(json.dumps(info))
        expected[split] = caps
    return expected


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The tiny COCO fixture prepared at the full size: (out folder, expected captions, data root)."""
    pytest.importorskip("PIL")
    root = tmp_path_factory.mktemp("mlgym_data")
    expected = write_coco(root)
    out = tmp_path_factory.mktemp("full")
    proc = prepare(out, "full", root)
    assert proc.returncode == 0, proc.stderr
    return out, expected, root


def test_full_size_reads_the_coco_layout(full, tmp_path):
    out, expected, root = full
    pub, priv = out / "public", out / "private"
    train, val, test = (json.loads((pub / f"{s}.json").read_text()) for s in ("train", "validation", "test"))
    refs = json.loads((priv / "test_references.json").read_text())
    assert (len(train), len(val), len(test)) == (3 + 2, 2, 2)  # val2014 split in thirds on a tiny copy

    # Test images: opaque ids and names, no captions in public; their captions are the references.
    assert [r["id"] for r in test] == ["test_00000", "test_00001"] and all(set(r) == {"id", "file"} for r in test)
    src = {}  # file bytes -> (split, image id) of the fixture
    for split in ("train2014", "val2014"):
        for f in (root / "image_captioning" / split).iterdir():
            src[f.read_bytes()] = (split, int(f.stem.rsplit("_", 1)[1]))
    for r in test:
        split, image_id = src[(pub / r["file"]).read_bytes()]
        assert split == "val2014" and refs[r["id"]] == expected["val2014"][image_id]
    # Train and validation keep the COCO id and file name and all captions, cleaned to one line.
    for r in train + val:
        split, image_id = src[(pub / r["file"]).read_bytes()]
        assert r["id"] == str(image_id) and r["captions"] == expected[split][image_id]
        assert Path(r["file"]).name == f"COCO_{split}_{image_id:012d}.jpg"
    assert {r["id"] for r in train} >= {str(i) for i in expected["train2014"]}
    used = [src[(pub / r["file"]).read_bytes()][1] for r in train + val + test]
    assert sorted(used) == sorted([*expected["train2014"], *expected["val2014"]])  # every image once
    assert not any(p.suffix == ".npy" for p in pub.iterdir())

    # Same bytes on a second run.
    again = tmp_path / "again"
    assert prepare(again, "full", root).returncode == 0
    for f in sorted(p for p in out.rglob("*") if p.is_file()):
        assert (again / f.relative_to(out)).read_bytes() == f.read_bytes(), f.name


def test_full_size_without_data_exits_3_saying_where_to_put_it(tmp_path):
    for data_dir in (None, tmp_path):
        proc = prepare(tmp_path / "out", "full", data_dir)
        assert proc.returncode == 3
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "image_captioning/" in lines[0] and "annotations/captions_train2014.json" in lines[0]
        assert "val2014/*.jpg" in lines[0]


def test_full_size_with_an_image_missing_exits_3(tmp_path):
    pytest.importorskip("PIL")
    expected = write_coco(tmp_path)
    victim = next((tmp_path / "image_captioning" / "val2014").iterdir())
    victim.unlink()
    proc = prepare(tmp_path / "out", "full", tmp_path)
    assert proc.returncode == 3 and victim.name in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert expected  # the fixture was written


def test_the_baseline_reads_jpegs_and_its_submission_is_valid(full, tmp_path):
    out, *_ = full
    ws = tmp_path / "ws"
    shutil.copytree(TASK / "workspace", ws)
    shutil.copytree(out / "public", ws / "data")
    proc = subprocess.run([sys.executable, "baseline.py"], cwd=ws, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (ws / "cache_train_64.npy").exists() and np.load(ws / "cache_test_64.npy").shape == (2, 64, 64, 3)
    result = evaluate(ws, out / "private")
    assert "invalid" not in result and 0 <= result["bleu"] <= 1


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    out = tmp_path_factory.mktemp("lite")
    proc = prepare(out, "lite", None)
    assert proc.returncode == 0, proc.stderr
    return out


def test_lite_size_is_generated_scenes_with_five_captions(lite, tmp_path):
    pub = lite / "public"
    for split, n in (("train", 3000), ("validation", 500), ("test", 500)):
        x = np.load(pub / f"{split}_images.npy")
        recs = json.loads((pub / f"{split}.json").read_text())
        assert x.shape == (n, 32, 32, 3) and x.dtype == np.uint8 and len(recs) == n
        assert len({r["id"] for r in recs}) == n
        if split != "test":
            assert all(len(set(r["captions"])) == 5 for r in recs)
    assert "captions" not in json.loads((pub / "test.json").read_text())[0]
    refs = json.loads((lite / "private" / "test_references.json").read_text())
    assert len(refs) == 500 and all(len(v) == 5 for v in refs.values())
    # The sample submission in the workspace matches these test ids.
    sample = list(csv.reader((TASK / "workspace" / "sample_submission.csv").open()))
    assert [r[0] for r in sample[1:]] == sorted(refs) == [r["id"] for r in json.loads((pub / "test.json").read_text())]
    # Deterministic, whatever the hash seed.
    again = tmp_path / "again"
    env_seed = {**os.environ, "PYTHONHASHSEED": "123"}
    env_seed.pop("MLGYM_DATA_DIR", None)
    subprocess.run([sys.executable, "prepare.py", "--size", "lite", "--out", str(again)], cwd=TASK, env=env_seed,
                   check=True, capture_output=True, timeout=300)
    for f in sorted(p for p in lite.rglob("*") if p.is_file()):
        assert (again / f.relative_to(lite)).read_bytes() == f.read_bytes(), f.name


def table(rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "caption"])
    w.writerows(rows)
    return buf.getvalue()


def test_bleu_rewards_captions_close_to_the_references(lite, tmp_path):
    priv = lite / "private"
    refs = json.loads((priv / "test_references.json").read_text())
    sample = evaluate(tmp_path, priv, (TASK / "workspace" / "sample_submission.csv").read_text())
    assert sample["bleu"] < 0.01  # valid but poor
    own = evaluate(tmp_path, priv, table((i, refs[i][0]) for i in reversed(list(refs))))
    assert own["bleu"] == 1.0  # a reference itself matches fully, in any row order
    wrong = list(refs)
    swapped = evaluate(tmp_path, priv, table((i, refs[wrong[(k + 1) % len(wrong)]][0]) for k, i in enumerate(wrong)))
    assert sample["bleu"] < swapped["bleu"] < 0.5 < own["bleu"]  # another image's caption: partly right
    upper = evaluate(tmp_path, priv, table((i, refs[i][0].upper()) for i in refs))
    assert upper["bleu"] == 1.0  # case does not matter
    assert evaluate(tmp_path, priv, table((i, refs[i][1]) for i in refs)) == \
        evaluate(tmp_path, priv, table((i, refs[i][1]) for i in refs))


def test_the_hidden_images_are_split_by_id_into_dev_and_test(lite, tmp_path):
    """About 20% of the test images make the dev split (what validate shows), the others the sealed
    test split, by a keyed hash of the image id (the task's secret); each split is its own corpus."""
    from pytest_mlgym.sdk.evaluator import Context

    priv = lite / "private"
    refs = json.loads((priv / "test_references.json").read_text())
    ids = sorted(refs)
    ctx = Context(artefact=tmp_path, size="lite", seed=0, task_dir=TASK, private_dir=priv, public_dir=None)
    dev = dict(zip(ids, ctx.row_splits(ids)["dev"].tolist()))
    n_dev = sum(dev.values())
    assert 70 <= n_dev <= 130
    right_on_dev = evaluate(tmp_path, priv, table((i, refs[i][0] if dev[i] else "a shape") for i in ids), split=None)
    assert right_on_dev["dev"]["bleu"] == 1.0 and right_on_dev["test"]["bleu"] < 0.01, right_on_dev
    assert (right_on_dev["dev"]["images"], right_on_dev["test"]["images"]) == (n_dev, len(ids) - n_dev)
    right_on_test = evaluate(tmp_path, priv, table((i, "a shape" if dev[i] else refs[i][0]) for i in ids), split=None)
    assert right_on_test["dev"]["bleu"] < 0.01 and right_on_test["test"]["bleu"] == 1.0, right_on_test


def test_the_reference_submission_covers_the_lite_test_ids(lite, tmp_path):
    sub = list(csv.reader((TASK / "reference" / "submission.csv").open()))
    refs = json.loads((lite / "private" / "test_references.json").read_text())
    assert sub[0] == ["id", "caption"] and sorted(r[0] for r in sub[1:]) == sorted(refs)
    assert "invalid" not in evaluate(tmp_path, lite / "private", (TASK / "reference" / "submission.csv").read_text())


@pytest.fixture(scope="module")
def tiny_refs(full):
    out, *_ = full
    return out / "private"  # two test ids: test_00000, test_00001


GOOD = [("test_00000", "a dog on a bench"), ("test_00001", "a man riding a horse")]


@pytest.mark.parametrize("content, reason", [
    (table(GOOD[:1]), "expected 2 rows"),
    (table(GOOD + [("test_00002", "a cat")]), "unknown id"),
    (table([GOOD[0], GOOD[0]]), "duplicate id"),
    (table([GOOD[0], ("test_99999", "a cat")]), "unknown id"),
    (table([GOOD[0], ("", "a cat")]), "unknown id"),
    (table([GOOD[0], ("test_00001", "")]), "empty caption"),
    (table([GOOD[0], ("test_00001", "   ")]), "empty caption"),
    (table([GOOD[0], ("test_00001", "nan")]), "not a caption"),
    (table([GOOD[0], ("test_00001", "NaN")]), "not a caption"),
    (table([GOOD[0], ("test_00001", "a dog " * 40)]), "max 200"),
    ("id,text\n" + "".join(f"{i},{c}\n" for i, c in GOOD), "header must be id,caption"),
    ("Id,Sale_Price\n1,nan\n", "header must be id,caption"),
    ("id,caption\ntest_00000,a dog, on a bench\ntest_00001,a man\n", "line 2: 3 field(s)"),
    ("id,caption\ntest_00000\ntest_00001,a man\n", "line 2: 1 field(s)"),
    ("id,caption\ntest_00000,\"a dog\ntest_00001,a man\n", "expected 2 rows"),
    ("", "is empty"),
])
def test_malformed_submissions_are_invalid_with_a_reason(tiny_refs, tmp_path, content, reason):
    assert reason in evaluate(tmp_path, tiny_refs, content)["invalid"]


def test_binary_and_non_utf8_files_are_invalid(tiny_refs, tmp_path):
    (tmp_path / "submission.csv").write_bytes(b"id,caption\ntest_00000,\xff\xfe\ntest_00001,a man\n")
    assert "not UTF-8" in evaluate(tmp_path, tiny_refs)["invalid"]
    (tmp_path / "submission.csv").write_bytes(b"id,caption\x00\x00\n")
    assert "NUL" in evaluate(tmp_path, tiny_refs)["invalid"]


def test_spaces_newlines_in_quotes_and_a_bom_are_tolerated(tiny_refs, tmp_path):
    text = "\ufeffid , caption\n test_00001 ,\"a man\nriding  a horse\"\n\ntest_00000,a dog on a bench\n"
    result = evaluate(tmp_path, tiny_refs, text)
    assert "bleu" in result and 0 <= result["bleu"] <= 1
    assert result == evaluate(tmp_path, tiny_refs, table([GOOD[0], ("test_00001", "a man riding a horse")]))
