"""Baseline row strategy for the iterated Battle of the Sexes: open with a coin flip, then
mostly follow the column player's last move, otherwise fall back on a favourite move."""
import random

FAVOURITE = 0  # the move to fall back on (both playing 0 pays the row player 2, both playing 1 pays 1)
P_OPEN_FAVOURITE = 0.5  # probability of opening round 1 with FAVOURITE (else the other move)
P_FOLLOW = 0.8  # from round 2 on: probability of copying the column player's last move


def row_strategy(history):
    """history: [row_move, col_move] pairs of the earlier rounds of this game (empty in round 1).
    Returns this round's row move, 0 or 1."""
    if not history:
        return FAVOURITE if random.random() < P_OPEN_FAVOURITE else 1 - FAVOURITE
    if random.random() < P_FOLLOW:
        return history[-1][1]  # meet the column player where it was last round
    return FAVOURITE
