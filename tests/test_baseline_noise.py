"""A baseline's noise (issue 18, point 6): seeds, spread, tolerance, other CPUs, and the judge's margin."""
from __future__ import annotations

import os
import statistics
from pathlib import Path

import pytest
from pydantic import ValidationError

from pytest_mlgym.__main__ import main
from pytest_mlgym.authoring import spread
from pytest_mlgym.results import RunRecord, judge
from pytest_mlgym.sandbox import isolation
from pytest_mlgym.task import SizeSpec, load_task

ROOT = Path(__file__).resolve().parent.parent
RUNS = [0.80, 0.84, 0.88]
STD = statistics.stdev(RUNS)


def test_a_size_with_a_consistent_spread_loads():
    spec = SizeSpec(baseline=0.84, tolerance=0.12, baseline_std=STD, baseline_runs=RUNS, deterministic=False)
    assert spec.baseline_runs == RUNS and spec.deterministic is False


@pytest.mark.parametrize("kw, words", [
    (dict(baseline=0.85), "is not the mean of baseline_runs"),
    (dict(baseline_std=0.01), "must be the standard deviation"),
    (dict(baseline_std=None), "must be the standard deviation"),
    (dict(baseline_std=-0.04), "greater than or equal to 0"),
    (dict(tolerance=0.03), "narrower than the seeds' own spread"),
    (dict(baseline_runs=[0.84], baseline_std=0.0), "at least 2 items"),
    (dict(baseline_runs=None), "baseline_std needs the baseline_runs"),
])
def test_bad_spreads_are_rejected(kw, words):
    with pytest.raises(ValidationError, match=words):
        SizeSpec(**{**dict(baseline=0.84, tolerance=0.12, baseline_std=STD, baseline_runs=RUNS), **kw})


def test_the_tolerance_covers_three_std_the_range_and_twice_the_other_cpu_move():
    assert spread.tolerance(RUNS) == pytest.approx(3 * STD)
    assert spread.tolerance([0.0, *[0.5] * 8, 1.0]) == 1.0  # the range: 3 std is 0.71 here
    assert spread.tolerance([0.5, 0.5, 0.5]) == 0.0
    assert spread.tolerance([0.5, 0.5, 0.5], cross_cpu=-0.02) == 0.04
    assert spread.rounded_up(0.0123401) == 0.0124 and spread.rounded_up(0.012) == 0.012


def test_other_cpu_settings_reach_the_sandbox_and_are_restored(monkeypatch, tmp_path):
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with spread.other_cpu(threads=1, isa="default"):
        env = isolation.base_env(tmp_path)
        assert env["OMP_NUM_THREADS"] == "1" and env["OPENBLAS_NUM_THREADS"] == "1"
        assert env["ATEN_CPU_CAPABILITY"] == "default" and "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
    assert os.environ["OMP_NUM_THREADS"] == "2" and "ATEN_CPU_CAPABILITY" not in os.environ
    assert "ATEN_CPU_CAPABILITY" not in isolation.base_env(tmp_path)
    with pytest.raises(ValueError, match="unknown instruction set 'sse9'"):
        spread.cpu_env(isa="sse9")


# the template task's baseline fitted on a subsample drawn with the episode seed, and shifted a little
# when it runs on one thread: seeds that differ, and a baseline that is not deterministic across CPUs
SEEDED = '''import os
import numpy as np
rng = np.random.default_rng(int(os.environ["MLGYM_SEED"]))
'''


def _seeded_task(tmp_path, capsys, shift_on_one_thread: bool):
    assert main(["new-task", "demo_seeds", "--dir", str(tmp_path), "--no-measure"]) == 0
    folder = tmp_path / "demo_seeds"
    base = folder / "workspace" / "baseline.py"
    text = base.read_text().replace("import numpy as np\n", SEEDED)
    text = text.replace("coef = np.polyfit(train[:, 1]", "train = train[rng.choice(len(train), 40, replace=False)]\n"
                                                        "coef = np.polyfit(train[:, 1]")
    if shift_on_one_thread:
        text = text.replace("pred = np.polyval(coef, test[:, 1])", "pred = np.polyval(coef, test[:, 1]) + "
                                                                   "0.05 * (os.environ['OMP_NUM_THREADS'] == '1')")
    base.write_text(text)
    capsys.readouterr()
    return folder


def test_measure_with_seeds_writes_the_mean_the_spread_and_a_tolerance_from_it(tmp_path, capsys):
    folder = _seeded_task(tmp_path, capsys, shift_on_one_thread=False)
    assert main(["measure", str(folder), "--seeds", "3", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "seed 2: test r2 = " in out and "bit-identical on threads=1: deterministic true" in out
    lite = load_task(folder).spec.sizes["lite"]  # validated: mean, std and tolerance agree with the runs
    runs = lite.baseline_runs
    assert runs is not None and len(set(runs)) == 3  # three real re-runs, not one run three times
    assert lite.baseline == pytest.approx(statistics.fmean(runs)) and lite.baseline_std == pytest.approx(
        statistics.stdev(runs), rel=1e-5)
    assert lite.tolerance >= max(3 * statistics.stdev(runs), max(runs) - min(runs)) and lite.deterministic is True
    assert main(["measure", str(folder), "--seeds", "2", "--runs", "2"]) == 2


def test_measure_on_another_cpu_says_not_deterministic_and_widens_the_tolerance(tmp_path, capsys):
    folder = _seeded_task(tmp_path, capsys, shift_on_one_thread=True)
    assert main(["measure", str(folder), "--seeds", "2", "--threads", "1", "--isa", "default"]) == 0
    out = capsys.readouterr().out
    assert "seed 0 on threads=1 isa=default: test r2 = " in out and "deterministic false" in out
    lite = load_task(folder).spec.sizes["lite"]
    runs = lite.baseline_runs
    assert runs is not None and lite.deterministic is False
    moved = float(out.split("moved by ")[1].split(" ")[0])
    assert moved != 0 and lite.tolerance >= max(2 * abs(moved), max(runs) - min(runs))


def rec(**kw) -> RunRecord:
    base = dict(session="s", task="t", size="lite", agent="a", policy="llm", seed=0, metric="acc", direction="max",
                baseline=0.8, tolerance=0.05, status="submitted")
    return RunRecord(**{**base, **kw})


@pytest.mark.parametrize("direction, score, beats", [
    ("max", 0.84, False),  # better than the baseline, but inside its noise
    ("max", 0.85, False),  # at the edge of the noise: the baseline itself can score this
    ("max", 0.86, True),
    ("min", 0.76, False),
    ("min", 0.74, True),
    ("max", 0.70, False),
])
def test_beating_the_baseline_means_beyond_its_noise(direction, score, beats):
    ok, verdict = judge(rec(direction=direction, best_submission=score))
    assert ok is beats
    assert ("beats" if beats else "does not beat") + " the baseline by more than its noise ± 0.05 (to " in verdict
    assert f"to {0.85 if direction == 'max' else 0.75:.6g})" in verdict


def test_the_baseline_agent_is_judged_against_the_tolerance_not_beyond_it():
    assert judge(rec(policy="baseline", best_submission=0.84))[0] is True
    assert judge(rec(policy="baseline", best_submission=0.86))[0] is False


def test_a_shipped_baseline_with_seed_1_is_a_real_re_run_inside_the_tolerance():
    from pytest_mlgym.authoring.measure import run_baseline

    task = load_task(ROOT / "tasks" / "image_classification_small")
    lite = task.size("lite")
    r = run_baseline(task, "lite", seed=1)
    assert r.test is not None and lite.baseline_runs is not None
    assert abs(r.test - lite.baseline) <= lite.tolerance, (r.test, lite.baseline, lite.tolerance)
    assert r.test != lite.baseline_runs[0]  # seed 1 trains another model than seed 0
