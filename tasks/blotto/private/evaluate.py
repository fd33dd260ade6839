"""Colonel Blotto, 6 battlefields, 120 soldiers: the row player's mean result per round (+1 for
winning more battlefields than the column player, -1 for fewer, 0 for as many) against a hidden
column player, over 10,000 games of 10 rounds (test) and 2,000 on a disjoint stream (dev).

The column player ignores the history: each round it draws 6 uniform integers in [0, 120], scales
them to 120 soldiers rounding down, and puts the few soldiers left over on one battlefield drawn
at random (from the evaluator's own stream: pytest_mlgym.sdk.families.games).
"""
import numpy as np

from pytest_mlgym.sdk import evaluator
from pytest_mlgym.sdk.families import games

N_GAMES, ROUNDS, FIELDS, SOLDIERS = 10_000, 10, 6, 120


def column_allocations(rng, n):
    """n allocations of exactly SOLDIERS: FIELDS uniform draws in [0, SOLDIERS] scaled down to
    SOLDIERS, then the soldiers short of it (0 .. FIELDS-1) all on one random field."""
    raw = rng.integers(0, SOLDIERS + 1, size=(n, FIELDS))
    raw[raw.sum(axis=1) == 0] = 1  # all zeros (odds 1 in 121^6): an even split
    alloc = raw * SOLDIERS // raw.sum(axis=1, keepdims=True)
    alloc[np.arange(n), rng.integers(0, FIELDS, size=n)] += SOLDIERS - alloc.sum(axis=1)
    return alloc


def column(histories, rng):
    return column_allocations(rng, len(histories)).tolist()


def allocation(a) -> str | None:
    if not isinstance(a, list):  # tuples and numpy arrays arrive as lists
        return "not a list or tuple"
    if len(a) != FIELDS:
        return f"wrong length {len(a)} (expected {FIELDS} battlefields)"
    for x in a:
        if type(x) is not int:
            return f"{type(x).__name__} entry {repr(x)[:40]} (soldiers are ints)"
        if x < 0:
            return f"negative entry {x}"
    return f"sum {sum(a)} > {SOLDIERS} soldiers" if sum(a) > SOLDIERS else None


def results(histories) -> dict:
    rounds = np.array(histories, dtype=np.int64)  # (games, rounds, row/col, fields)
    row, col = rounds[:, :, 0], rounds[:, :, 1]
    result = np.sign((row > col).sum(axis=-1) - (row < col).sum(axis=-1))  # +1 won, 0 tie, -1 lost
    rate = {k: round(float(np.mean(result == v)), 6) for k, v in (("win_rate", 1), ("tie_rate", 0), ("loss_rate", -1))}
    return {"score": round(float(result.mean()), 6), **rate, "games": len(histories), "rounds": ROUNDS}


def score(ctx: evaluator.Context) -> dict:
    played = games.play(ctx, column, allocation, rounds=ROUNDS, games=N_GAMES, numpy=True)
    return {split: results(hs) for split, hs in played.items()}


if __name__ == "__main__":
    evaluator.run(score)
