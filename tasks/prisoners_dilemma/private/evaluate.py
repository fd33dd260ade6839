"""Iterated Prisoner's Dilemma: the row player's mean payoff per round against a hidden column
player, over 10,000 games of 10 rounds (test) and 2,000 on a disjoint stream (dev).

Every round of every game the column player picks one of 11 classic rules uniformly at random
and plays that rule's move given the game so far; the pick and one uniform draw for the random
rules come from the evaluator's own stream (pytest_mlgym.sdk.families.games), in a fixed order.
"""
from pytest_mlgym.sdk import evaluator
from pytest_mlgym.sdk.families import games

N_GAMES, ROUNDS = 10_000, 10
PAYOFF = {(0, 0): 3, (0, 1): 0, (1, 0): 5, (1, 1): 1}  # the row player's; 0 = cooperate, 1 = defect


# The column player's rules: f(history, u) -> 0/1, history = [(row_move, col_move), ...] so far,
# u a uniform draw in [0, 1) (used by the random rules only).
def tit_for_tat(h, u):
    return h[-1][0] if h else 0


def always_cooperate(h, u):
    return 0


def always_defect(h, u):
    return 1


def coin_flip(h, u):
    return int(u < 0.5)


def grim_trigger(h, u):  # defects for good once the row player has defected
    return int(any(row == 1 for row, _ in h))


def pavlov(h, u):  # cooperates when both moved alike last round, else defects
    return int(h[-1][0] != h[-1][1]) if h else 0


def tit_for_two_tats(h, u):  # defects only after two row defections in a row
    return int(len(h) >= 2 and h[-1][0] == h[-2][0] == 1)


def suspicious_tit_for_tat(h, u):  # tit for tat, opening with a defection
    return h[-1][0] if h else 1


def fair_coin(h, u):  # cooperates with probability 0.5
    return int(u >= 0.5)


def forgiving_tit_for_tat(h, u):  # tit for tat, but cooperates after two row defections in a row
    return 0 if len(h) >= 2 and h[-1][0] == h[-2][0] == 1 else tit_for_tat(h, u)


def erratic(h, u):  # opens with a defection; then cooperates (1/3), defects (1/6), repeats its own
    if not h:        # last move (0.4) or plays the opposite of the row player's last move (0.1)
        return 1
    return 0 if u < 0.3333 else 1 if u < 0.5 else h[-1][1] if u < 0.9 else 1 - h[-1][0]


RULES = [erratic, tit_for_tat, always_cooperate, always_defect, coin_flip, grim_trigger, pavlov,
         tit_for_two_tats, suspicious_tit_for_tat, fair_coin, forgiving_tit_for_tat]


def column(histories, rng):
    moves = []
    for h in histories:  # the pick and the draw first, whatever the game: a fixed stream
        rule, u = RULES[rng.randrange(len(RULES))], rng.random()
        moves.append(rule(h, u))
    return moves


def score(ctx: evaluator.Context) -> dict:
    played = games.play(ctx, column, games.binary, rounds=ROUNDS, games=N_GAMES)
    return {split: {"score": round(sum(PAYOFF[m] for h in hs for m in h) / (len(hs) * ROUNDS), 6),
                    "games": len(hs), "rounds": ROUNDS} for split, hs in played.items()}


if __name__ == "__main__":
    evaluator.run(score)
