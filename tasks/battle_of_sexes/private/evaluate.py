"""Iterated Battle of the Sexes: the row player's mean payoff per round against a hidden column
player, over 10,000 games of 10 rounds (test) and 2,000 on a disjoint stream (dev).

The column player opens with its favourite, 1; from round 2 on it copies the row player's FIRST
move with probability 0.8, else plays the other move (one draw per game and round, from the
evaluator's own stream: pytest_mlgym.sdk.families.games).
"""
from pytest_mlgym.sdk import evaluator
from pytest_mlgym.sdk.families import games

N_GAMES, ROUNDS = 10_000, 10
ROW_PAYOFF = {(0, 0): 2, (1, 1): 1, (0, 1): 0, (1, 0): 0}  # (row move, column move) -> row payoff
P_COPY = 0.8


def column(histories, rng):
    if not histories[0]:
        return [1] * len(histories)
    return [h[0][0] if rng.random() < P_COPY else 1 - h[0][0] for h in histories]


def score(ctx: evaluator.Context) -> dict:
    played = games.play(ctx, column, games.binary, rounds=ROUNDS, games=N_GAMES)
    return {split: {"score": round(sum(ROW_PAYOFF[m] for h in hs for m in h) / (len(hs) * ROUNDS), 6),
                    "games": len(hs), "rounds": ROUNDS} for split, hs in played.items()}


if __name__ == "__main__":
    evaluator.run(score)
