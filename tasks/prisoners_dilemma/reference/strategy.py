"""Reference row strategy: cooperate, and defect only in the last round.

The opponent draws a fresh classic strategy every round, so there is no fixed opponent
"type" to detect and exploit. What does carry over is memory: tit-for-tat, grim trigger,
tit-for-two-tats, suspicious/forgiving tit-for-tat and the noisy copier all punish a row
defection in later rounds, and Pavlov keeps cooperating only while both players cooperate.
A defection therefore costs more in future cooperation than it gains at once, except in
round 10, where nothing comes after it. (Dynamic programming over the opponent's
state shows this rule is optimal in expectation for this opponent mix.)
"""

ROUNDS = 10


def row_strategy(history):
    return 1 if len(history) == ROUNDS - 1 else 0
