"""The one rule of which score is better (pytest_mlgym.metric), and the modules that must ask it."""
from __future__ import annotations

import math

import pytest

from pytest_mlgym import scoring
from pytest_mlgym.anchors import normalised
from pytest_mlgym.metric import Metric
from pytest_mlgym.results import RunRecord, judge
from pytest_mlgym.task import Metric as TaskMetric

MAX, MIN = Metric.of("max"), Metric.of("min")


def test_better_best_worst_order():
    assert MAX.better(2, 1) and not MAX.better(1, 1) and not MAX.better(1, 2)
    assert MIN.better(1, 2) and not MIN.better(1, 1) and not MIN.better(2, 1)
    scores = [3.0, None, 1.0, float("nan"), 2.0]
    assert (MAX.best(scores), MAX.worst(scores), MIN.best(scores), MIN.worst(scores)) == (3.0, 1.0, 1.0, 3.0)
    assert MAX.best([None, math.nan]) is None and MIN.worst([]) is None
    assert sorted([1.0, 3.0, 2.0], key=MAX.order) == [3.0, 2.0, 1.0]
    assert sorted([1.0, 3.0, 2.0], key=MIN.order) == [1.0, 2.0, 3.0]
    assert (MAX.word, MAX.sign, MIN.word, MIN.sign) == ("higher", ">", "lower", "<")


def test_unknown_directions():
    with pytest.raises(ValueError, match="direction must be 'max' or 'min', not 'up'"):
        Metric.of("up")


def test_the_task_metric_is_the_metric_with_a_required_name():
    m = TaskMetric(name="acc", direction="min")
    assert isinstance(m, Metric) and m.better(1, 2) and m.best([2.0, 1.0]) == 1.0
    with pytest.raises(ValueError):
        TaskMetric(direction="max")
    with pytest.raises(ValueError):
        TaskMetric(name="acc", direction="max", extra=1)


@pytest.mark.parametrize("direction", ["max", "min"])
def test_every_caller_follows_the_metric(monkeypatch, direction):
    """Flip the rule in one place: the env's reward, AUP's best of k and the verdict all follow."""
    rec = RunRecord(session="s", task="t", size="lite", agent="a", policy="replay", seed=0, metric="m",
                    direction=direction, baseline=5.0, tolerance=0.0, status="submitted", best_submission=6.0)
    ref = 7.0 if direction == "max" else 3.0  # the normalised score's 1 (pytest_mlgym.anchors)
    before = (normalised(direction, 6.0, 5.0, ref), scoring.best_of_k([4.0, 6.0], direction), judge(rec)[0])
    monkeypatch.setattr(Metric, "is_max", property(lambda self: self.direction != "max"))
    after = (normalised(direction, 6.0, 5.0, ref), scoring.best_of_k([4.0, 6.0], direction), judge(rec)[0])
    assert all(a != b for a, b in zip(before, after)), (before, after)
