"""Baseline row strategy for the iterated Prisoner's Dilemma: generous tit-for-tat."""
import random


def row_strategy(history):
    """history: list of (row_move, col_move) of the earlier rounds; 0 = cooperate, 1 = defect.
    Returns this round's row move (0 or 1)."""
    if not history:
        return 0  # open by cooperating
    their_last = history[-1][1]
    if their_last == 1 and random.random() < 0.1:
        return 0  # now and then forgive a defection, to break cycles of retaliation
    return their_last  # otherwise copy the opponent's last move
