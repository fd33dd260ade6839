"""Evaluator for the iterated Battle of the Sexes task.

Usage: python evaluate.py strategy.py      (env MLGYM_SEED, default 0)

Plays N_GAMES games of ROUNDS rounds between the agent's row_strategy and a hidden column
player. The agent's code runs in a sandbox of its own (pytest_mlgym.sdk.untrusted); the games
advance in lockstep, one round trip per round. The column player's randomness is a stream derived
from this folder's secret (pytest_mlgym.sdk.streams): the agent's code cannot replay it.
Last stdout line: {"score": mean row payoff per round, ...} or {"invalid": reason}.
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
ROW_PAYOFF = {(0, 0): 2, (1, 1): 1, (0, 1): 0, (1, 0): 0}  # (row move, column move) -> row payoff
P_COPY = 0.8  # the column player copies the row player's FIRST move with this probability


class Invalid(Exception):
    pass


def check_moves(moves, rnd):
    if not isinstance(moves, list) or len(moves) != N_GAMES:
        raise Invalid("malformed reply from the strategy process")
    for g, m in enumerate(moves):
        if not isinstance(m, int) or m not in (0, 1):  # bool is an int; 1.0 and "1" are not
            raise Invalid(f"row_strategy returned {repr(m)[:60]} ({type(m).__name__}); expected 0 or 1 "
                          f"(game {g}, round {rnd + 1})")


def play(path, seed, rng):
    """The row player's mean payoff per round against the column player drawing from ``rng``;
    raises Invalid / UntrustedError."""
    histories = [[] for _ in range(N_GAMES)]  # per game: [row_move, col_move] per earlier round
    total = 0
    with Untrusted(path, seed=seed, budget_s=BUDGET_S) as agent:
        for rnd in range(ROUNDS):
            moves = agent.map("row_strategy", [[h] for h in histories])
            check_moves(moves, rnd)
            for h, r in zip(histories, moves):
                r = int(r)
                if rnd == 0:
                    c = 1  # the column player opens with its own favourite
                else:  # one draw per game and round, whatever the moves: a fixed random stream
                    first = h[0][0]
                    c = first if rng.random() < P_COPY else 1 - first
                total += ROW_PAYOFF[r, c]
                h.append([r, c])
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
            score = play(path, seed, rng)
            result = {"score": round(score, 6), "games": N_GAMES, "rounds": ROUNDS}
        except (Invalid, UntrustedError) as e:
            result = {"invalid": " ".join(str(e).split())[:300]}
        except Exception as e:  # never crash on a bad artefact
            result = {"invalid": " ".join(f"evaluation error: {type(e).__name__}: {e}".split())[:300]}
    # The leading newline ends any partial line that reached our stdout, so the last line is ours.
    print("\n" + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
