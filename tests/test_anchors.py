"""The normalised score (pytest_mlgym.anchors): 0 = baseline, 1 = reference, finite everywhere."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from pytest_mlgym.anchors import FLOOR, Anchors, normalised
from pytest_mlgym.task import TaskError, load_task

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.parent for p in (ROOT / "tasks").glob("*/task.yaml"))


def test_linear_is_zero_at_the_baseline_and_one_at_the_reference_for_both_directions():
    up = Anchors(direction="max", baseline=0.2, reference=0.6)
    down = Anchors(direction="min", baseline=3.1, reference=2.3)
    assert (up.score(0.2), up.score(0.6), up.score(0.4), up.score(0.0)) == pytest.approx((0, 1, 0.5, -0.5))
    assert (down.score(3.1), down.score(2.3), down.score(2.7), down.score(3.5)) == pytest.approx((0, 1, 0.5, -0.5))


def test_blotto_no_longer_explodes():
    """blotto's baseline is ~0: the old 1 + gain/|baseline| gave a search run's 0.245 a normalised ~390."""
    spec = load_task(ROOT / "tasks" / "blotto").spec.sizes["lite"]
    a = spec.anchors("max")
    assert a is not None and abs(spec.baseline) < 0.01
    assert a.score(spec.baseline) == 0 and a.score(spec.reference) == pytest.approx(1)
    assert -5 < a.score(-1.0) < 0 < a.score(0.1) < 1 < a.score(1.0) < 5  # the whole range of the metric


def test_log_form_is_finite_at_and_beyond_the_optimum():
    a = Anchors(direction="max", baseline=0.5, reference=0.9, form="log", optimum=1.0)
    assert a.score(0.5) == 0 and a.score(0.9) == pytest.approx(1)
    assert a.score(0.99) == pytest.approx(math.log(0.5 / 0.01) / math.log(0.5 / 0.1))
    cap = math.log(1 / FLOOR) / math.log(0.5 / 0.1)
    assert a.score(1.0) == a.score(1.7) == pytest.approx(cap) and math.isfinite(cap)
    assert a.score(0.0) < 0 and math.isfinite(a.score(-1e300))
    low = Anchors(direction="min", baseline=1.0, reference=0.1, form="log", optimum=0.0)
    assert low.score(0.1) == pytest.approx(1) and low.score(0.0) == low.score(-3) == pytest.approx(
        math.log(1 / FLOOR) / math.log(10))


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf])
def test_no_score_has_no_normalised_score(value):
    assert Anchors(direction="max", baseline=0, reference=1).score(value) is None
    assert Anchors(direction="min", baseline=1, reference=0.5, form="log", optimum=0).score(value) is None


@pytest.mark.parametrize("kw, why", [
    ({"direction": "max", "baseline": 1.0, "reference": 1.0}, "must be higher than the baseline"),
    ({"direction": "min", "baseline": 1.0, "reference": 2.0}, "must be lower than the baseline"),
    ({"direction": "max", "baseline": 0, "reference": 1, "form": "log"}, "needs the metric's known optimum"),
    ({"direction": "max", "baseline": 0, "reference": 1, "form": "log", "optimum": 1}, "must be higher than the reference"),
    ({"direction": "max", "baseline": 0, "reference": 1, "optimum": 2}, "only by the log form"),
    ({"direction": "max", "baseline": 0, "reference": math.inf}, "finite"),
])
def test_degenerate_anchors_are_refused(kw, why):
    with pytest.raises(ValueError, match=why):
        Anchors(**kw)
    assert normalised(kw["direction"], 0.5, kw["baseline"], kw["reference"], kw.get("form", "linear"),
                      kw.get("optimum")) is None  # a record with such anchors: no score, never inf or NaN


def test_task_yaml_anchors_are_validated_with_a_one_line_error(tmp_path):
    task = tmp_path / "tiny"
    shutil.copytree(ROOT / "tests" / "data" / "tasks" / "tiny", task)
    yml = task / "task.yaml"
    text = yml.read_text()
    for bad, why in [("reference: 5.0, dev_reference: 10.0", "sizes: Value error, lite.reference: the reference 5 must "
                                                            "be higher than the baseline 6"),
                     ("reference: 10.0, dev_reference: 6.0", "lite.dev_reference: the reference 6 must be higher"),
                     ("reference: 10.0, dev_reference: 10.0, normalise: log", "lite.reference: the log form needs"),
                     ("reference: 10.0, dev_reference: 10.0, normalise: cubic", "sizes.lite.normalise: Input should be")]:
        yml.write_text(text.replace("reference: 10.0, dev_reference: 10.0", bad))
        with pytest.raises(TaskError, match=why) as e:
            load_task(task)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_lite_size_declares_both_anchors(folder):
    """The benchmark's tasks all have a normalised score (python -m pytest_mlgym measure DIR --reference)."""
    spec = load_task(folder).spec
    lite = spec.sizes["lite"]
    assert lite.anchors(spec.metric.direction) is not None, f"{folder.name}: no reference anchor"
    assert lite.anchors(spec.metric.direction, "dev") is not None, f"{folder.name}: no dev_reference anchor"


def test_a_size_without_a_dev_reference_rewards_nothing_and_says_so(tmp_path):
    from pytest_mlgym.env import MLGymEnv

    task = tmp_path / "tiny"
    shutil.copytree(ROOT / "tests" / "data" / "tasks" / "tiny", task)
    yml = task / "task.yaml"
    yml.write_text(yml.read_text().replace(", reference: 10.0, dev_reference: 10.0", ""))
    env = MLGymEnv(load_task(task), cache_dir=tmp_path / "cache")
    try:
        env.reset(seed=0)
        env.step("echo 8 > answer.txt")
        with pytest.warns(UserWarning, match=r"tiny \(lite\) declares no dev_reference: no reward for beating"):
            assert env.step("validate")[1] == 0.0  # 9 beats the baseline 6, but there is no scale to reward it on
    finally:
        env.close()


def test_measure_reference_writes_the_reference_solutions_scores(tmp_path, capsys):
    from pytest_mlgym.authoring.reference import measure_reference

    task = tmp_path / "blotto"
    shutil.copytree(ROOT / "tasks" / "blotto", task)
    yml = task / "task.yaml"
    shipped = load_task(task).spec.sizes["lite"]
    yml.write_text(yml.read_text().replace(f", reference: {shipped.reference}, dev_reference: {shipped.dev_reference}", ""))
    assert load_task(task).spec.sizes["lite"].reference is None
    out = measure_reference(task, "lite")
    lite = load_task(task).spec.sizes["lite"]
    assert (lite.reference, lite.dev_reference) == (shipped.reference, shipped.dev_reference) == (
        out["values"]["reference"], out["values"]["dev_reference"])
    assert "sizes.lite.reference" in capsys.readouterr().out
    shutil.rmtree(task / "reference")
    with pytest.raises(TaskError, match="no reference/ solution"):
        measure_reference(task, "lite")
