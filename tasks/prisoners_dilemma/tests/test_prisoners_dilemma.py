"""prisoners_dilemma: the column player's 11 rules (MLGym's), the two splits, and generated strategies
through the real trusted evaluator (moved here from tests/security/test_bad_input.py).
"""
from __future__ import annotations

import json
import math
import runpy
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from pytest_mlgym.evaluation import Evaluation, run_evaluator
from pytest_mlgym.sdk.streams import random_stream
from pytest_mlgym.task import load_task
from pytest_mlgym.testing.scripts import evaluator_result

TASK = Path(__file__).resolve().parents[1]
PAY = {(0, 0): 3, (0, 1): 0, (1, 0): 5, (1, 1): 1}


def evaluate(tmp_path: Path, source: str, **env) -> dict:
    (tmp_path / "strategy.py").write_text(textwrap.dedent(source))
    return evaluator_result(TASK, tmp_path, "strategy.py", env, timeout=120)


# -- the opponent: MLGym's 11 rules, each as its probability of defecting given the game so far -----
def p_defect(h: list[tuple]) -> float:
    row = [r for r, _ in h]
    rules = [
        (0.5 - 0.3333) + 0.4 * h[-1][1] + 0.1 * (1 - h[-1][0]) if h else 1.0,  # MLGym's "simple random"
        row[-1] if h else 0,  # tit for tat
        0, 1, 0.5,  # always cooperate, always defect, random
        float(1 in row),  # grim trigger
        float(h[-1][0] != h[-1][1]) if h else 0,  # pavlov
        float(row[-2:] == [1, 1]),  # tit for two tats
        row[-1] if h else 1,  # suspicious tit for tat
        0.5,  # random cooperate
        0 if row[-2:] == [1, 1] else (row[-1] if h else 0),  # forgiving tit for tat
    ]
    return sum(rules) / len(rules)  # a rule drawn uniformly, afresh every round


def expected(policy, h=()) -> float:
    """The exact mean payoff per round of a deterministic row policy over a 10-round game."""
    h = list(h)
    if len(h) == 10:
        return 0.0
    m, p = policy(h), p_defect(h)
    return sum(q * (PAY[m, c] / 10 + expected(policy, h + [(m, c)])) for c, q in ((0, 1 - p), (1, p)) if q)


POLICIES = {
    "return 1": lambda h: 1,
    "return 0": lambda h: 0,
    "return history[-1][1] if history else 0": lambda h: h[-1][1] if h else 0,
    "return 1 if len(history) == 9 else 0": lambda h: int(len(h) == 9),
}


@pytest.mark.parametrize("body", POLICIES)
def test_the_opponent_is_mlgyms_mix_of_11_rules(tmp_path, body):
    result = evaluate(tmp_path, f"def row_strategy(history):\n    {body}\n")
    want = expected(POLICIES[body])
    assert result["test"]["score"] == pytest.approx(want, abs=0.02)  # ~3 standard errors, 10,000 games
    assert result["dev"]["score"] == pytest.approx(want, abs=0.045)  # 2,000 games


def test_always_defecting_is_the_best_reply_so_the_reference_is_optimal():
    def best(h=()):
        h = list(h)
        if len(h) == 10:
            return 0.0
        p = p_defect(h)
        return max(sum(q * (PAY[m, c] / 10 + best(h + [(m, c)])) for c, q in ((0, 1 - p), (1, p)) if q)
                   for m in (0, 1))

    assert best() == pytest.approx(expected(POLICIES["return 1"]), abs=1e-12) == pytest.approx(2.625, abs=1e-3)
    reference = runpy.run_path(str(TASK / "reference" / "strategy.py"))["row_strategy"]
    assert [reference([(0, 0)] * n) for n in range(10)] == [1] * 10


def test_the_test_split_is_the_column_players_stream_and_dev_a_disjoint_fifth(tmp_path):
    """The evaluator's rules replayed against the stream: a pick and a draw per game and round."""
    rules = runpy.run_path(str(TASK / "private" / "evaluate.py"))["RULES"]
    result = evaluate(tmp_path, "def row_strategy(history):\n    return 1\n")
    for split, purpose, games in (("test", "column player", 10_000), ("dev", "dev:column player", 2_000)):
        rng, histories = random_stream(0, purpose, TASK / "private"), [[] for _ in range(games)]
        for _ in range(10):
            for h in histories:
                rule, u = rules[rng.randrange(11)], rng.random()
                h.append((1, rule(h, u)))
        score = round(sum(PAY[m] for h in histories for m in h) / (games * 10), 6)
        assert result[split] == {"score": score, "games": games, "rounds": 10}, split


# -- generated strategies through run_evaluator ------------------------------------------------------
def cheap(n: int):
    """``n`` reproducible examples, no deadline (evaluators start processes), no example database."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=False,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


def score(task, prepared, write) -> Evaluation:
    """Write the artefact with ``write(path, scratch)``, score it; a clean outcome either way."""
    scratch = Path(tempfile.mkdtemp(prefix="mlgym-bad-prisoners_dilemma-"))
    try:
        write(scratch / "strategy.py", scratch)
        ev = run_evaluator(task, "lite", scratch / "strategy.py", prepared, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if ev.valid:
        assert isinstance(ev.score, float) and math.isfinite(ev.score), ev
    else:
        reason = ev.reason
        assert isinstance(reason, str) and reason.strip() and len(reason) < 600, ev
        assert len(reason.splitlines()) == 1 and not reason.rstrip().endswith(":"), repr(reason)
        assert not reason.startswith(("evaluator failed", "evaluator printed no JSON")), ev
    return ev


FAKE = '{"test": {"score": 99.0, "games": 10000}}'
PRELUDES_OK = [f"import os; os.write(1, b'{FAKE}\\n')", "", "import random", f"print('{FAKE}')",
               f"print('{FAKE}', flush=True)", f"import sys; sys.stdout.write('{FAKE}\\n')",
               f"import sys; print('{FAKE}', file=sys.__stdout__, flush=True)",
               "import sys; sys.stderr.write('x' * 100000)", "import os; os.environ.clear()",
               "import sys; sys.path.insert(0, '/')", f"import os; os.write(2, b'{FAKE}\\n')"]
PRELUDES_BAD = ["import sys; sys.exit(0)", "import sys; sys.exit(3)", "import os; os._exit(0)",
                "import os; os._exit(1)",
                "raise KeyboardInterrupt", "raise SystemExit('bye')", "raise MemoryError", "1/0",
                "import does_not_exist_xyz", "def broken(:", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
                "raise ValueError('multi\\nline\\r\\nreason' * 50)", "import os; os.close(0)",
                f"print('{FAKE}'); import sys; sys.exit(0)", "exec('def f(:')", "import sys; sys.setrecursionlimit(1)"]
SIGNATURES_OK = ["def row_strategy(history):", "def row_strategy(history, *args, **kwargs):",
                 "def row_strategy(history=None):"]
SIGNATURES_BAD = ["def row_strategy():", "def row_strategy(a, b):", "def row_strategy(*, history):",
                  "async def row_strategy(history):", "def row_strategy_(history):",
                  "row_strategy = 5\ndef _unused(history):",
                  ("class row_strategy:\n  def __init__(self, h): pass\n"
                   "def _unused(history):")]
EXPRS_OK = [f"print('{FAKE}') or 1", "0", "1", "True", "False", "len(history) % 2", "history[-1][1] if history else 0",
            "__import__('numpy').int64(1)", "__import__('numpy').bool_(True)",
            "int(__import__('random').random() < .5)",
            "history.append((9, 9)) or 0", f"__import__('sys').stdout.write('{FAKE}\\n') and 0"]
EXPRS_BAD = ["2", "-1", "None", "'1'", "1.0", "0.0", "[0]", "(1,)", "{}", "float('nan')", "1/0", "{}['k']",
             "__import__('sys').exit(0)", "__import__('os')._exit(0)", "__import__('numpy').float64(0)",
             "__import__('numpy').array([1])", "type('X', (), {'__repr__': lambda s: 1/0})()",
             "(_ for _ in ()).throw(KeyboardInterrupt)", "exec('raise ValueError(\"a\\\\nb\")')",
             f"__import__('sys').exit('{FAKE}')", "__import__('os').kill(__import__('os').getpid(), 9)"]
SPECIAL = [None, True, False, 0, -1, 1, 2**63, 10**400, 1e308, float("inf"), float("nan"), "", "\x00", "\u202etxt",
           "\U0001f642", "1e3", b"\xff\x00"]
values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
                      | st.binary(max_size=8) | st.sampled_from(SPECIAL),
                      lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                      max_leaves=8)


def mostly(ok: list, bad: list) -> st.SearchStrategy:
    """One of ``bad`` about a third of the time, else one of ``ok``: broken parts mask each other."""
    return st.integers(0, 3).flatmap(lambda i: st.sampled_from(bad if i == 1 else ok))


@pytest.fixture(scope="module")
def dilemma():
    task = load_task(TASK)
    return task, task.prepare("lite")


strategies_source = st.one_of(
    st.tuples(mostly(PRELUDES_OK, PRELUDES_BAD), mostly(SIGNATURES_OK, SIGNATURES_BAD),
              mostly(EXPRS_OK, EXPRS_BAD) | values.map(repr), st.integers(0, 5).map(lambda i: i == 1)),
    st.text(max_size=80).map(lambda t: (None, t, None, None)),  # random source text
)


@cheap(30)
@given(parts=strategies_source)
@example(parts=(f"import sys; print('{FAKE}', file=sys.__stdout__, flush=True)", SIGNATURES_OK[0], "0", False))
@example(parts=(f"import sys; sys.stdout.write('{FAKE}\\n')", SIGNATURES_OK[1], "history[-1][1] if history else 0",
                False))
@example(parts=("", SIGNATURES_OK[0], EXPRS_OK[-1], False))
def test_generated_strategies(dilemma, parts):
    prelude, signature, expr, as_generator = parts
    if prelude is None:
        source, expect = signature, None
    else:
        body = f"    yield {expr}" if as_generator else f"    return {expr}"
        source = f"{prelude}\n{signature}\n{body}\n"
        expect = prelude in PRELUDES_OK and signature in SIGNATURES_OK and expr in EXPRS_OK and not as_generator
        if prelude in PRELUDES_BAD or signature in SIGNATURES_BAD or expr in EXPRS_BAD or as_generator:
            expect = False
    ev = score(*dilemma, lambda path, _: path.write_text(source, encoding="utf-8", errors="surrogatepass"))
    if ev.valid:  # the real games, not a fake
        assert 0 <= ev.score <= 5 and ev.metrics.get("games") == 10_000, (source, ev)
        assert 0 <= ev.dev_score <= 5 and ev.dev_metrics.get("games") == 2_000, (source, ev)
    if expect is not None:
        assert ev.valid == expect, (source, ev)


def test_a_strategy_that_never_returns_times_out_and_leaves_no_process(tmp_path):
    folder = tmp_path / "prisoners_dilemma"
    shutil.copytree(TASK, folder, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    yml = folder / "task.yaml"
    yml.write_text(yml.read_text().replace("evaluation_s: 60", "evaluation_s: 2"))
    task = load_task(folder)
    scratches = []

    def write(path, scratch):
        scratches.append(str(scratch))  # the evaluator's and the agent code's command lines name it
        path.write_text("def row_strategy(history):\n    while True:\n        pass\n")

    start = time.monotonic()
    ev = score(task, task.prepare("lite"), write)
    assert not ev.valid and ev.reason == "evaluation timed out after 2 s", ev
    assert time.monotonic() - start < 30
    time.sleep(0.2)
    leftovers = [_cmdline(p) for p in Path("/proc").glob("[0-9]*") if scratches[0] in _cmdline(p)]
    assert not leftovers


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


# -- malformed moves and broken strategies, run by hand ----------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("2", "returned 2 (int): expected 0 or 1 (game 0, round 1)"),
    ("1.0", "returned 1.0 (float)"),
    ("0 if len(history) < 9 else None", "returned None (NoneType): expected 0 or 1 (game 0, round 10)"),
])
def test_a_move_other_than_0_or_1_is_invalid(tmp_path, value, expected):
    assert expected in evaluate(tmp_path, f"def row_strategy(history):\n    return {value}\n")["invalid"]


def test_history_is_a_list_of_tuples(tmp_path):
    source = """
        def row_strategy(history):
            assert type(history) is list and all(type(x) is tuple and len(x) == 2 for x in history), history
            return 0
    """
    assert "test" in evaluate(tmp_path, source)


def test_a_missing_artefact_is_invalid(tmp_path):
    proc = subprocess.run([sys.executable, str(TASK / "private" / "evaluate.py"), "strategy.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"invalid": "strategy.py not found"}
