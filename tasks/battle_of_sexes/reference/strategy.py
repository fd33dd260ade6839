"""Reference row strategy: always play 0.

Round 1 costs a payoff of 1 (the column player opens with 1, so 0 is a mismatch), but from
round 2 on the column player copies the row player's FIRST move with probability 0.8, so
opening with 0 makes it play 0 (which pays the row player 2) most of the time. After that,
0 is the best reply every round: 0.8 * 2 = 1.6 expected against 0.2 * 1 for playing 1.
Expected score (0 + 9 * 1.6) / 10 = 1.44 per round; opening with 1 can reach only 0.82.
"""


def row_strategy(history):
    return 0
