"""blotto: the evaluator's opponent, its two splits, and its handling of malformed strategies.

The evaluator runs as the harness runs it: a subprocess in a scratch folder holding the
artefact, the last stdout line being one JSON object.
"""
from __future__ import annotations

import json
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pytest_mlgym.testing.scripts import evaluator_result

TASK = Path(__file__).resolve().parents[1]


def evaluate(tmp_path: Path, source: str, **env) -> dict:
    (tmp_path / "strategy.py").write_text(textwrap.dedent(source))
    return evaluator_result(TASK, tmp_path, "strategy.py", env, timeout=180)


def test_the_opponent_uses_exactly_120_soldiers_in_proportion_to_uniform_draws():
    """As MLGym's column player: six uniform draws in [0, 120] scaled to 120 rounding down, and
    the soldiers short of 120 all on one battlefield drawn at random."""
    evaluator = runpy.run_path(str(TASK / "private" / "evaluate.py"))  # trusted code; writes no .pyc
    alloc = evaluator["column_allocations"](np.random.default_rng(7), 50_000)
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 121, size=(50_000, 6))  # the draws behind them
    field = rng.integers(0, 6, size=50_000)  # and the field that takes the soldiers left over
    floor = raw * 120 // raw.sum(axis=1, keepdims=True)
    assert alloc.dtype.kind == "i" and (alloc >= 0).all() and (alloc.sum(axis=1) == 120).all()
    extra = alloc - floor
    assert (extra >= 0).all() and ((extra > 0).sum(axis=1) <= 1).all() and extra.max() <= 5
    assert (extra[np.arange(50_000), field] == 120 - floor.sum(axis=1)).all()
    assert np.abs(alloc.mean(axis=0) - 20).max() < 0.3


def test_the_test_split_is_the_column_players_stream_and_dev_a_disjoint_fifth(tmp_path):
    """Against a fixed allocation the result of every round follows from the column's draws alone:
    replayed from the stream (one call of column_allocations per round, all games at once)."""
    from pytest_mlgym.sdk.streams import numpy_stream

    evaluator = runpy.run_path(str(TASK / "private" / "evaluate.py"))
    result = evaluate(tmp_path, (TASK / "reference" / "strategy.py").read_text())
    for split, purpose, games in (("test", "column player", 10_000), ("dev", "dev:column player", 2_000)):
        rng = numpy_stream(0, purpose, TASK / "private")
        col = np.stack([evaluator["column_allocations"](rng, games) for _ in range(10)], axis=1)
        row = np.array([30, 30, 30, 30, 0, 0])
        won = np.sign((row > col).sum(axis=-1) - (row < col).sum(axis=-1))
        assert result[split]["score"] == round(float(won.mean()), 6), split
        assert result[split]["games"] == games and result[split]["rounds"] == 10
    assert result["dev"]["score"] != result["test"]["score"]


def test_reference_wins_clearly_and_scores_identically_even_when_it_prints_fake_metrics(tmp_path):
    reference = evaluate(tmp_path, (TASK / "reference" / "strategy.py").read_text())
    for split in ("dev", "test"):
        assert 0.2 < reference[split]["score"] < 0.3
        assert reference[split]["score"] == pytest.approx(reference[split]["win_rate"] - reference[split]["loss_rate"],
                                                          abs=1e-5)
    printer = """
        import os, sys
        print('{"score": 1.0}')
        sys.stdout.write('{"score": 1.0}')
        os.write(1, b'{"score": 1.0}')
        try:  # straight into the evaluator's stdout, where the system allows it
            with open(f"/proc/{os.getppid()}/fd/1", "w") as f:
                f.write('{"test": {"score": 1.0}}')
        except OSError:
            pass

        def row_strategy(history):
            print('\\n{"test": {"score": 1.0}}')
            return (30, 30, 30, 30, 0, 0)  # a tuple: the same allocation as the reference
    """
    assert evaluate(tmp_path, printer) == reference


def test_tuples_numpy_arrays_and_unspent_soldiers_are_accepted(tmp_path):  # and history holds tuples
    source = """
        import numpy as np

        def row_strategy(history):
            if len(history) == 0:
                return (20, 20, 20, 20, 20, 20)
            if len(history) == 1:
                assert type(history[0]) is tuple and history[0][0] == [20] * 6 and sum(history[0][1]) == 120
                return np.array([40, 40, 0, 0, 0, 0])
            if len(history) == 2:
                return [0, 0, 0, 0, 0, 0]
            raise RuntimeError("reached round 4")
    """
    assert "reached round 4" in evaluate(tmp_path, source)["invalid"]


@pytest.mark.parametrize("value, expected", [
    ("[20, 20, 20, 20, 20]", "wrong length 5"),
    ("[20] * 7", "wrong length 7"),
    ("[]", "wrong length 0"),
    ("[-1, 41, 20, 20, 20, 20]", "negative entry -1"),
    ("[20.0] * 6", "float entry 20.0"),
    ("[20, 20, 20, 20, 20, 19.5]", "float entry 19.5"),
    ("[True, 20, 20, 20, 20, 20]", "bool entry True"),
    ("[21, 20, 20, 20, 20, 20]", "sum 121 > 120"),
    ("['20'] * 6", "str entry '20'"),
    ("[None] * 6", "NoneType entry None"),
    ("[[20]] * 6", "list entry [20]"),
    ("'20,20,20,20,20,20'", "(str): not a list or tuple"),
    ("{'a': 1}", "(dict): not a list or tuple"),
    ("120", "(int): not a list or tuple"),
    ("None", "(NoneType): not a list or tuple"),
    ("__import__('numpy').full(6, 20.0)", "float entry 20.0"),
    ("[float('nan')] * 6", "not plain data"),  # refused by the untrusted-code channel itself
])
def test_a_bad_allocation_is_invalid_with_the_reason(tmp_path, value, expected):
    reason = evaluate(tmp_path, f"def row_strategy(history):\n    return {value}\n")["invalid"]
    assert expected in reason, reason
    assert "not plain data" in reason or "(game 0, round 1)" in reason


def test_a_bad_allocation_in_a_later_round_is_reported_there(tmp_path):
    source = "def row_strategy(history):\n    return [30] * 4 + [0, 0] if len(history) < 5 else [30] * 5 + [0]\n"
    reason = evaluate(tmp_path, source)["invalid"]
    assert "sum 150 > 120" in reason and "round 6" in reason


@pytest.mark.parametrize("source, expected", [
    ("def row_strategy(history):\n    raise ValueError('boom')\n", "row_strategy() raised: ValueError: boom"),
    ("def strategy(history):\n    return [20] * 6\n", "defines no function row_strategy()"),
    ("import sys\nsys.exit(3)\n", "importing strategy.py failed"),
    ("x = (\n", "SyntaxError"),
    ("import os\ndef row_strategy(history):\n    os._exit(0)\n", "exited"),
])
def test_broken_strategies_are_invalid_with_a_reason(tmp_path, source, expected):
    assert expected in evaluate(tmp_path, source)["invalid"]


def test_a_hanging_strategy_runs_out_of_its_time_budget(tmp_path):
    source = """
        def row_strategy(history):
            while len(history) == 3:
                pass
            return [20] * 6
    """
    reason = evaluate(tmp_path, source, MLGYM_TEST_STRATEGY_BUDGET_S="5")["invalid"]
    assert "time budget of 5 s" in reason


def test_a_missing_artefact_is_invalid(tmp_path):
    proc = subprocess.run([sys.executable, str(TASK / "private" / "evaluate.py"), "strategy.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"invalid": "strategy.py not found"}
