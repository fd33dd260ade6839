"""Baseline row strategy for Colonel Blotto: a random split of the soldiers, much like the
opponent's own."""
import random

SOLDIERS, FIELDS = 120, 6
CONTESTED = 6  # how many battlefields get soldiers (picked at random each round); the rest get 0
RANDOMNESS = 1.0  # 0: split evenly over the contested fields; 1: in proportion to uniform random weights
MIN_SOLDIERS = 0  # soldiers each contested field gets before the rest is split


def row_strategy(history):
    """history: [row_allocation, col_allocation] pairs of the earlier rounds of this game
    (empty in round 1). Returns this round's allocation: 6 non-negative ints, sum <= 120."""
    fields = random.sample(range(FIELDS), CONTESTED)
    weights = [1 - RANDOMNESS + RANDOMNESS * random.random() for _ in fields]
    spare = SOLDIERS - MIN_SOLDIERS * CONTESTED
    total = sum(weights) or 1.0
    shares = [int(spare * w / total) for w in weights]  # rounded down ...
    for i in range(spare - sum(shares)):  # ... then the few soldiers left over, one each
        shares[i % CONTESTED] += 1
    allocation = [0] * FIELDS
    for f, s in zip(fields, shares):
        allocation[f] = MIN_SOLDIERS + s
    return allocation
