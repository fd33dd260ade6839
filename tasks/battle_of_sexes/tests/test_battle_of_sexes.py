"""battle_of_sexes: the evaluator's opponent, its two splits, and its handling of malformed strategies.

The evaluator runs as the harness runs it: a subprocess in a scratch folder holding the
artefact, the last stdout line being one JSON object.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_mlgym.sdk.streams import random_stream
from pytest_mlgym.testing.scripts import evaluator_result

TASK = Path(__file__).resolve().parents[1]


def evaluate(tmp_path: Path, source: str, **env) -> dict:
    (tmp_path / "strategy.py").write_text(textwrap.dedent(source))
    return evaluator_result(TASK, tmp_path, "strategy.py", env, timeout=120)


def test_the_opponent_follows_the_protocol(tmp_path):
    # Always 1: 1 in round 1 (the column opens with 1), then 0.8 * 1 per round -> 0.82 expected.
    always_one = evaluate(tmp_path, "def row_strategy(history):\n    return 1\n")
    assert always_one["test"]["score"] == pytest.approx(0.82, abs=0.01)
    assert always_one["dev"]["score"] == pytest.approx(0.82, abs=0.02)
    # Open with 0, then 1: the column copies the FIRST move (0) w.p. 0.8 -> 9 * 0.2 / 10 = 0.18.
    opened_zero = "def row_strategy(history):\n    return 0 if not history else 1\n"
    assert evaluate(tmp_path, opened_zero)["test"]["score"] == pytest.approx(0.18, abs=0.01)


def _always_zero(seed: int, purpose: str, games: int) -> float:
    """The score of always playing 0, replaying the column player's stream: one draw per game and
    round from round 2 on, games in order within a round; it meets 0 (payoff 2) w.p. 0.8."""
    rng = random_stream(seed, purpose, TASK / "private")
    return round(sum(2 for _ in range(9) for _ in range(games) if rng.random() < 0.8) / (games * 10), 6)


def test_the_test_split_is_the_column_players_stream_and_dev_a_disjoint_fifth(tmp_path):
    result = evaluate(tmp_path, (TASK / "reference" / "strategy.py").read_text())  # always 0
    assert result["test"] == {"score": _always_zero(0, "column player", 10_000), "games": 10_000, "rounds": 10}
    assert result["dev"] == {"score": _always_zero(0, "dev:column player", 2_000), "games": 2_000, "rounds": 10}
    assert result["dev"]["score"] != result["test"]["score"]


def test_reference_is_near_optimal_and_scores_identically_even_when_it_prints_fake_metrics(tmp_path):
    reference = evaluate(tmp_path, (TASK / "reference" / "strategy.py").read_text())
    assert reference["test"]["score"] == pytest.approx(1.44, abs=0.01)
    printer = """
        import os, sys
        print('{"score": 2.0}')
        sys.stdout.write('{"score": 2.0}')
        os.write(1, b'{"score": 2.0}')
        try:  # straight into the evaluator's stdout, where the system allows it
            with open(f"/proc/{os.getppid()}/fd/1", "w") as f:
                f.write('{"test": {"score": 2.0}}')
        except OSError:
            pass

        def row_strategy(history):
            print('\\n{"test": {"score": 2.0}}')
            return 0
    """
    assert evaluate(tmp_path, printer) == reference


def test_history_is_tuples_and_bool_and_numpy_moves_are_accepted(tmp_path):
    source = """
        import numpy as np

        def row_strategy(history):
            if len(history) == 0:
                return True
            if len(history) == 1:
                assert history[0] in ((1, 0), (1, 1)), history  # the bool is kept as the int 1
                return np.int64(0)
            raise RuntimeError("reached round 3")
    """
    assert "reached round 3" in evaluate(tmp_path, source)["invalid"]


@pytest.mark.parametrize("value, expected", [
    ("2", "returned 2 (int): expected 0 or 1 (game 0, round 1)"),
    ("-1", "returned -1 (int)"),
    ("1.0", "returned 1.0 (float)"),
    ("'1'", "returned '1' (str)"),
    ("None", "returned None (NoneType)"),
    ("[0]", "returned [0] (list)"),
    ("{'move': 0}", "(dict)"),
    ("float('nan')", "not plain data"),  # refused by the untrusted-code channel itself
    ("object()", "not plain data"),
    ("0 if len(history) < 9 else 2", "(game 0, round 10)"),
])
def test_a_move_other_than_0_or_1_is_invalid(tmp_path, value, expected):
    assert expected in evaluate(tmp_path, f"def row_strategy(history):\n    return {value}\n")["invalid"]


def test_a_bad_move_in_a_dev_game_is_invalid_too(tmp_path):
    source = """
        CALLS = [0]
        def row_strategy(history):
            CALLS[0] += 1
            return 2 if CALLS[0] > 10 * 10_000 else 0  # the test games first, then the dev games
    """
    assert "(game 10000, round 1)" in evaluate(tmp_path, source)["invalid"]


@pytest.mark.parametrize("source, expected", [
    ("def row_strategy(history):\n    raise ValueError('boom')\n", "row_strategy() raised: ValueError: boom"),
    ("def row_strategy(history):\n    return 1 if len(history) < 4 else 1 / 0\n", "ZeroDivisionError"),
    ("def strategy(history):\n    return 0\n", "defines no function row_strategy()"),
    ("row_strategy = 0\n", "defines no function row_strategy()"),
    ("import sys\nsys.exit(3)\n", "importing strategy.py failed"),
    ("import no_such_module_xyz\n", "ModuleNotFoundError"),
    ("import os\ndef row_strategy(history):\n    os._exit(0)\n", "exited"),
])
def test_broken_strategies_are_invalid_with_a_reason(tmp_path, source, expected):
    assert expected in evaluate(tmp_path, source)["invalid"]


def test_a_hanging_strategy_runs_out_of_its_time_budget(tmp_path):
    source = """
        import time

        def row_strategy(history):
            if len(history) == 2:
                time.sleep(600)
            return 0
    """
    reason = evaluate(tmp_path, source, MLGYM_TEST_STRATEGY_BUDGET_S="3")["invalid"]
    assert "time budget of 3 s" in reason


def test_a_missing_artefact_is_invalid(tmp_path):
    proc = subprocess.run([sys.executable, str(TASK / "private" / "evaluate.py"), "strategy.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"invalid": "strategy.py not found"}
