"""Baseline row strategy for the iterated Prisoner's Dilemma: generous tit-for-tat."""
import random

FIRST_MOVE = 0  # the opening move: 0 = cooperate, 1 = defect
FORGIVENESS = 0.1  # probability of answering a defection with cooperation


def row_strategy(history):
    """history: list of (row_move, col_move) of the earlier rounds; 0 = cooperate, 1 = defect.
    Returns this round's row move (0 or 1)."""
    if not history:
        return FIRST_MOVE
    their_last = history[-1][1]
    if their_last == 1 and random.random() < FORGIVENESS:
        return 0  # now and then forgive a defection, to break cycles of retaliation
    return their_last  # otherwise copy the opponent's last move
