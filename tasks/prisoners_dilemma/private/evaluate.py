"""Evaluator for the iterated Prisoner's Dilemma task.

Usage: python evaluate.py strategy.py      (env MLGYM_SEED, default 0)

Plays N_GAMES games of ROUNDS rounds between the agent's row_strategy and a hidden column
opponent that, every round, picks one of 11 classic strategies uniformly at random.
The agent's code runs in a sandbox of its own (pytest_mlgym.sdk.untrusted); the games advance
in lockstep, one round trip per round. The opponent's draws are a stream derived from this
folder's secret (pytest_mlgym.sdk.streams): the agent's code cannot replay it.
Last stdout line: {"score": mean row payoff per round, "games": N} or {"invalid": reason}.
"""
import json
import os
import sys

from pytest_mlgym.sdk.streams import random_stream
from pytest_mlgym.sdk.untrusted import Untrusted, UntrustedError

N_GAMES = 10_000
ROUNDS = 10
# Wall-clock budget for the agent's code (import + all rounds). The override exists for the
# tests; the harness never sets it, so agents always get the documented 30 s.
BUDGET_S = float(os.environ.get("MLGYM_TEST_STRATEGY_BUDGET_S") or 30)
PAYOFF = {(0, 0): (3, 3), (0, 1): (0, 5), (1, 0): (5, 0), (1, 1): (1, 1)}  # 0 = C, 1 = D


# --- Column strategies: f(rows, cols, u) -> 0/1. rows/cols are the earlier moves of the
# row player / the column itself; u is a uniform draw in [0, 1) for the random ones.
def tit_for_tat(rows, cols, u):
    return rows[-1] if rows else 0

def always_cooperate(rows, cols, u):
    return 0

def always_defect(rows, cols, u):
    return 1

def uniform_random(rows, cols, u):
    return int(u < 0.5)

def grim_trigger(rows, cols, u):
    return int(1 in rows)

def pavlov(rows, cols, u):  # win-stay-lose-shift: cooperate iff both moved alike last round
    return int(rows[-1] != cols[-1]) if rows else 0

def tit_for_two_tats(rows, cols, u):
    return int(rows[-2:] == [1, 1])

def suspicious_tit_for_tat(rows, cols, u):
    return rows[-1] if rows else 1

def mostly_cooperate(rows, cols, u):
    return int(u >= 0.8)  # cooperates with probability 0.8

def forgiving_tit_for_tat(rows, cols, u):  # answers a defection, but forgives it w.p. 0.2
    return int(bool(rows) and rows[-1] == 1 and u >= 0.2)

def noisy_copy(rows, cols, u):  # copies the row's last move (C before any) w.p. 0.9, else flips
    last = rows[-1] if rows else 0
    return last if u < 0.9 else 1 - last

OPPONENTS = [tit_for_tat, always_cooperate, always_defect, uniform_random, grim_trigger,
             pavlov, tit_for_two_tats, suspicious_tit_for_tat, mostly_cooperate,
             forgiving_tit_for_tat, noisy_copy]


class Invalid(Exception):
    pass


def check_moves(moves, rnd):
    if not isinstance(moves, list) or len(moves) != N_GAMES:
        raise Invalid("malformed reply from the strategy process")
    for g, m in enumerate(moves):
        if not isinstance(m, int) or m not in (0, 1):  # bool is an int; 1.0 and "1" are not
            raise Invalid(f"row_strategy returned {repr(m)[:60]} (type {type(m).__name__}); expected 0 or 1 "
                          f"(game {g}, round {rnd + 1})")


def play(path, seed, rng):
    """The mean row payoff per round against the opponent drawing from ``rng``; raises Invalid /
    UntrustedError."""
    rows = [[] for _ in range(N_GAMES)]
    cols = [[] for _ in range(N_GAMES)]
    total = 0
    with Untrusted(path, seed=seed, budget_s=BUDGET_S) as agent:
        for rnd in range(ROUNDS):
            # history: the (row_move, col_move) tuples of the earlier rounds of each game
            moves = agent.map("row_strategy", [[list(zip(r, c))] for r, c in zip(rows, cols)], tuples=True)
            check_moves(moves, rnd)
            # Opponent: a fresh strategy and a fresh uniform draw per game and round, drawn
            # in a fixed order so the stream does not depend on the row player's moves.
            for g in range(N_GAMES):
                pick, u = rng.randrange(len(OPPONENTS)), rng.random()
                r, c = int(moves[g]), OPPONENTS[pick](rows[g], cols[g], u)
                total += PAYOFF[r, c][0]
                rows[g].append(r)
                cols[g].append(c)
    return total / (N_GAMES * ROUNDS)


def main():
    if len(sys.argv) != 2:
        result = {"invalid": "usage: evaluate.py strategy.py"}
    else:
        path = os.path.abspath(sys.argv[1])
        seed = int(os.environ.get("MLGYM_SEED") or 0)
        rng = random_stream(seed, "column player")  # no secret: the evaluator stops, naming the file
        try:
            if not os.path.isfile(path):
                raise Invalid(f"artefact {os.path.basename(path)} not found")
            result = {"score": round(play(path, seed, rng), 6), "games": N_GAMES}
        except (Invalid, UntrustedError) as e:
            result = {"invalid": " ".join(str(e).split())[:300]}
        except Exception as e:  # never crash on a bad artefact
            result = {"invalid": " ".join(f"evaluation error: {type(e).__name__}: {e}".split())[:300]}
    # The leading newline ends any partial line that reached our stdout, so the last line is ours.
    print("\n" + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
