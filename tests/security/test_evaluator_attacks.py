"""Attacks from inside agent code that an evaluator calls (the games' strategies, the SAT heuristic),
on every evaluator that calls agent code and every backend, through real episodes.

The agent's code runs in a sandbox of its own (pytest_mlgym.sandbox.runner): it must not see the
evaluator's processes, environment, private data or secret, trace it, or write into its stdout;
and it must not predict the opponent it plays against from the seed it is given. Each attack
reports what it found through the one channel back to the agent (the ``invalid`` reason in the
observation), so a hole that reopens fails the test with what leaked.
"""
from __future__ import annotations

import inspect
import runpy
import textwrap
from pathlib import Path

import pytest
from redteam import CALLS_AGENT_CODE, arena, attack, backend  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]

# an honest function per task, which an attack falls back on when it finds nothing
HONEST = {
    "prisoners_dilemma": "def row_strategy(history):\n    return 0 if not history else history[-1][1]\n",
    "battle_of_sexes": "def row_strategy(history):\n    return 0 if not history else history[-1][1]\n",
    "blotto": "def row_strategy(history):\n    return [20] * 6\n",
    "sat_heuristic": ("def heuristic(clauses, assignment, *rest):\n"
                      "    lit = clauses[0][0]\n    return abs(lit), lit > 0\n"),
}
ENTRY = {"sat_heuristic": "heuristic"}
ARTEFACT = {"sat_heuristic": "heuristic.py"}

SNOOP = '''
import ctypes, glob, os
LOOT = []
for key in ("MLGYM_PRIVATE_DATA", "MLGYM_PUBLIC_DATA", "MLGYM_SEED", "MLGYM_RUNNER"):
    if key in os.environ:
        LOOT.append(f"env {key}={os.environ[key]}")
for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
    for what in ("cmdline", "environ"):
        try:
            data = open(f"/proc/{pid}/{what}", "rb").read()
        except OSError:
            continue
        if b"evaluate.py" in data or b"MLGYM_PRIVATE_DATA" in data or b"pytest" in data:
            LOOT.append(f"/proc/{pid}/{what}: " + data.replace(b"\\0", b" ").decode(errors="replace")[:120])
            try:  # forge the score: a metrics line into the evaluator's stdout
                with open(f"/proc/{pid}/fd/1", "w") as f:
                    f.write('\\n{"score": 5.0, "cost": 1}\\n')
                LOOT.append(f"wrote into /proc/{pid}/fd/1")
            except OSError:
                pass
libc = ctypes.CDLL(None, use_errno=True)
if os.getppid() > 1 and libc.ptrace(16, os.getppid(), 0, 0) == 0:  # PTRACE_ATTACH to whoever started us
    LOOT.append(f"ptrace attached to {os.getppid()}")
for path in [*PATHS, *glob.glob("/tmp/mlgym-eval-*/*"), *glob.glob("/tmp/mlgym-r-*/*")]:
    for root, _, files in os.walk(path) if os.path.isdir(path) else [(os.path.dirname(path), [], [os.path.basename(path)])]:
        for name in files:
            try:
                LOOT.append(f"{os.path.join(root, name)}: " + open(os.path.join(root, name), errors="replace").read(80))
            except OSError:
                pass
'''


def _snooper(where, task: str) -> str:
    paths = [str(where.tasks / task / "private"), str(where.cache)]
    fn = ENTRY.get(task, "row_strategy")
    return (f"PATHS = {paths!r}\n{SNOOP}\n{HONEST[task]}\n"
            f"_honest = {fn}\n"
            f"def {fn}(*args):\n"
            f"    if LOOT:\n"
            f"        raise RuntimeError('LOOT ' + ' | '.join(LOOT))\n"
            f"    return _honest(*args)\n")


def _write(path: str, text: str) -> str:
    return f"cat > {path} <<'MLGYM_EOF'\n{text.strip()}\nMLGYM_EOF"


@pytest.mark.parametrize("task", CALLS_AGENT_CODE)
def test_agent_code_cannot_reach_the_evaluator(attack, arena, backend, task):  # noqa: F811 (fixtures)
    """It cannot read the evaluator's environment, command line, private data or secret, trace it,
    or write a metrics line into its stdout; the harness's processes are not even visible."""
    backend.require("hidden", "pid_isolation")
    out = attack([_write(ARTEFACT.get(task, "strategy.py"), _snooper(arena, task)), "validate", "submit"], task=task)
    assert "LOOT" not in out.observations, out.observations[:2000]
    assert out.record.status == "submitted", out.record
    assert 5.0 not in [s.score for s in out.record.scores] and 1.0 not in [s.score for s in out.record.scores]


def test_what_agent_code_sees(attack, arena, backend):  # noqa: F811 (fixtures)
    """Its view, reported through the reason: another user where the harness can switch, no
    evaluator variables, a process list of its own."""
    backend.require("hidden", "pid_isolation")
    probe = ("import os\n"
             "def row_strategy(history):\n"
             "    raise RuntimeError(f'VIEW uid={os.getuid()} procs={len([p for p in os.listdir(\"/proc\") "
             "if p.isdigit()])} keys={sorted(k for k in os.environ if k.startswith(\"MLGYM\"))}')\n")
    out = attack([_write("strategy.py", probe), "submit"], task="battle_of_sexes")
    reason = out.record.reason
    assert "VIEW" in reason and "keys=[]" in reason, reason
    procs = int(reason.split("procs=")[1].split()[0])
    assert procs <= 5, reason  # its own sandbox: a shell, python, not the evaluator or the harness
    import os

    from pytest_mlgym.sandbox import isolation
    if os.geteuid() == 0 and isolation.can_switch_user():
        assert "uid=0 " not in reason and f"uid={os.geteuid()} " not in reason, reason


# -- predicting the opponent from the seed the agent's code is seeded with ---------------------------
SEED = '''
import random
_STATE = random.getstate()
SEED = next((s for s in range(1000) if random.Random(s).getstate() == _STATE), 0)  # the seed we were given
N, CALLS = 10_000, [0]
def _where():  # round r >= 10: the dev games, played after the test games (not predicted here)
    g, r = CALLS[0] % N, CALLS[0] // N
    CALLS[0] += 1
    return g, r
'''

BATTLE = SEED + '''
_OPP = random.Random(SEED)  # the column player's stream, if it were seeded like ours
U = [None] + [[_OPP.random() for _ in range(N)] for _ in range(9)]
def row_strategy(history):
    g, r = _where()
    if r == 0 or r >= 10:
        return 0  # it opens with 1: give up round 1 to make it copy our 0 later
    first = history[0][0]
    return first if U[r][g] < 0.8 else 1 - first  # meet it wherever it goes
'''

BLOTTO = SEED + '''
import numpy as np
{allocations}
_OPP = np.random.default_rng(SEED)
COLS = [column_allocations(_OPP, N) for _ in range(10)]
def row_strategy(history):
    g, r = _where()
    if r >= 10:
        return [20] * 6
    col, out, left = COLS[r][g], [0] * 6, 120
    for f in sorted(range(6), key=lambda f: col[f]):  # just beat the cheapest fields
        if col[f] + 1 <= left:
            out[f], left = int(col[f]) + 1, left - int(col[f]) - 1
    return out
'''

PD = SEED + '''
{opponents}
_OPP = random.Random(SEED)
DRAWS = [[(_OPP.randrange(len(RULES)), _OPP.random()) for _ in range(N)] for _ in range(10)]
PAY = {{(0, 0): 3, (0, 1): 0, (1, 0): 5, (1, 1): 1}}
PLAN = {{}}
def _plan(g):
    """The best row moves for game g knowing every opponent draw: dynamic programming over what the
    opponents look at (the last two row moves, any earlier defection, the last column move)."""
    memo = {{}}
    def best(r, last2, anyd, lastc):
        if r == 10:
            return 0, ()
        key = (r, last2, anyd, lastc)
        if key not in memo:
            pick, u = DRAWS[r][g]
            seen = ([(1, 0)] if anyd else []) + [(m, 0) for m in last2]  # the game as the rules see it
            if lastc is not None:
                seen[-1] = (seen[-1][0], lastc)
            c = RULES[pick](seen, u)
            options = []
            for me in (0, 1):
                v, rest = best(r + 1, (last2 + (me,))[-2:], anyd or (len(last2) == 2 and last2[0] == 1), c)
                options.append((v + PAY[me, c], (me,) + rest))
            memo[key] = max(options)
        return memo[key]
    return best(0, (), False, None)[1]
def row_strategy(history):
    g, r = _where()
    if g < 3000 and r < 10:  # a third of the games is enough to show the gain, and quick
        if g not in PLAN:
            PLAN[g] = _plan(g)
        return PLAN[g][r]
    return 1  # the honest optimum
'''


def _predictor(task: str) -> str:
    ns = runpy.run_path(str(ROOT / "tasks" / task / "private" / "evaluate.py"))
    if task == "battle_of_sexes":
        return BATTLE
    if task == "blotto":
        return BLOTTO.format(allocations=textwrap.dedent(inspect.getsource(ns["column_allocations"])).replace(
            "FIELDS", "6").replace("SOLDIERS", "120"))
    rules = "\n".join(inspect.getsource(f) for f in ns["RULES"])
    return PD.format(opponents=rules + f"\nRULES = [{', '.join(f.__name__ for f in ns['RULES'])}]")


# above what honest play reaches (the references: 1.44, 0.25, 2.63, each the optimum or near it), below
# what the predictors reached while the opponent drew from the agent's own seed (see the note)
HONEST_BEST = {"battle_of_sexes": 1.5, "blotto": 0.4, "prisoners_dilemma": 2.7}


@pytest.mark.parametrize("task", sorted(HONEST_BEST))
def test_agent_code_cannot_predict_the_opponent(attack, arena, backend, task):  # noqa: F811 (fixtures)
    """A strategy that replays the stream its own seed gives (random.Random(seed),
    np.random.default_rng(seed)) knows nothing of the opponent: it scores no better than honest play."""
    out = attack([_write("strategy.py", _predictor(task)), "submit"], task=task)
    assert out.record.status == "submitted", out.record
    assert out.record.best_submission < HONEST_BEST[task], out.record.best_submission
