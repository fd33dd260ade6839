"""Evaluator for the Colonel Blotto task (6 battlefields, 120 soldiers).

Usage: python evaluate.py strategy.py      (env MLGYM_SEED, default 0)

Plays N_GAMES games of ROUNDS rounds between the agent's row_strategy and a hidden column
player that splits its soldiers at random. The agent's code runs in a sandbox of its own
(pytest_mlgym.sdk.untrusted); the games advance in lockstep, one round trip per round. The
column player's randomness is a stream derived from this folder's secret
(pytest_mlgym.sdk.streams): the agent's code cannot replay it.
Last stdout line: {"score": mean result per round, ...} or {"invalid": reason}.
"""
import json
import os
import sys

import numpy as np

from pytest_mlgym.sdk.streams import numpy_stream
from pytest_mlgym.sdk.untrusted import Untrusted, UntrustedError

N_GAMES = 10_000
ROUNDS = 10
FIELDS = 6
SOLDIERS = 120
# Wall-clock budget for the agent's code (import + all rounds). The override exists for the
# tests; the harness never sets it, so agents always get the documented 30 s.
BUDGET_S = float(os.environ.get("MLGYM_TEST_STRATEGY_BUDGET_S") or 30)


class Invalid(Exception):
    pass


def column_allocations(rng, n):
    """n allocations: FIELDS uniform random ints in [0, SOLDIERS], scaled to sum to exactly
    SOLDIERS (integer largest-remainder rounding: floors, then +1 on the largest remainders)."""
    raw = rng.integers(0, SOLDIERS + 1, size=(n, FIELDS))
    raw[raw.sum(axis=1) == 0] = 1  # all zeros (odds 1 in 121^6): an even split
    scaled, total = raw * SOLDIERS, raw.sum(axis=1, keepdims=True)
    alloc, rem = scaled // total, scaled % total
    short = SOLDIERS - alloc.sum(axis=1)  # 0 .. FIELDS-1 soldiers still to place
    order = np.argsort(-rem, axis=1, kind="stable")  # largest remainder first, ties by field
    rank = np.argsort(order, axis=1)  # each field's place in that order
    return alloc + (rank < short[:, None])


def check_allocation(a):
    """None if ``a`` is a valid allocation, else why not."""
    if not isinstance(a, list):  # tuples and numpy arrays arrive as lists
        return f"not a list or tuple but {type(a).__name__}"
    if len(a) != FIELDS:
        return f"wrong length {len(a)} (expected {FIELDS} battlefields)"
    for x in a:
        if isinstance(x, bool):
            return f"bool entry {x}"
        if isinstance(x, float):
            return f"float entry {x!r} (soldiers are ints)"
        if not isinstance(x, int):
            return f"non-int entry {repr(x)[:40]} ({type(x).__name__})"
        if x < 0:
            return f"negative entry {x}"
    if sum(a) > SOLDIERS:
        return f"sum {sum(a)} > {SOLDIERS} soldiers"
    return None


def play(path, seed, rng):
    """The row player's mean result per round (+1 win, 0 tie, -1 loss) against the column player
    drawing from ``rng``; raises Invalid / UntrustedError."""
    histories = [[] for _ in range(N_GAMES)]  # per game: [row_alloc, col_alloc] per earlier round
    results = np.zeros(3, dtype=np.int64)  # losses, ties, wins
    with Untrusted(path, seed=seed, budget_s=BUDGET_S) as agent:
        for rnd in range(ROUNDS):
            rows = agent.map("row_strategy", [[h] for h in histories])
            if not isinstance(rows, list) or len(rows) != N_GAMES:
                raise Invalid("malformed reply from the strategy process")
            for g, a in enumerate(rows):
                why = check_allocation(a)
                if why:
                    raise Invalid(f"row_strategy returned an invalid allocation {repr(a)[:80]}: {why} "
                                  f"(game {g}, round {rnd + 1})")
            row = np.array(rows, dtype=np.int64)
            col = column_allocations(rng, N_GAMES)
            fields = (row > col).sum(axis=1) - (row < col).sum(axis=1)  # fields won - fields lost
            results += np.bincount(np.sign(fields) + 1, minlength=3)
            for h, r, c in zip(histories, rows, col.tolist()):
                h.append([r, c])
    n = N_GAMES * ROUNDS
    return {"score": round(float(results[2] - results[0]) / n, 6), "win_rate": round(results[2] / n, 6),
            "tie_rate": round(results[1] / n, 6), "loss_rate": round(results[0] / n, 6)}


def main():
    if len(sys.argv) != 2:
        result = {"invalid": "usage: evaluate.py strategy.py"}
    else:
        path = os.path.abspath(sys.argv[1])
        seed = int(os.environ.get("MLGYM_SEED") or 0)
        rng = numpy_stream(seed, "column player")  # no secret: the evaluator stops, naming the file
        try:
            if not os.path.isfile(path):
                raise Invalid(f"artefact {os.path.basename(path)} not found")
            result = {**play(path, seed, rng), "games": N_GAMES, "rounds": ROUNDS}
        except (Invalid, UntrustedError) as e:
            result = {"invalid": " ".join(str(e).split())[:300]}
        except Exception as e:  # never crash on a bad artefact
            result = {"invalid": " ".join(f"evaluation error: {type(e).__name__}: {e}".split())[:300]}
    # The leading newline ends any partial line that reached our stdout, so the last line is ours.
    print("\n" + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
