"""A toy trainer: the loss of a configuration, written to result.json."""
import json
import math
import sys
import time

LR = 0.1  # learning rate
WIDTH = 10  # units
ACT = "sigmoid"  # relu, tanh or sigmoid
NORM = False  # normalise the inputs

STEPS = 10  # training steps: more is better
SLEEP = 0.0  # seconds per step (tests make runs slow with it)

if WIDTH > 60:
    sys.exit("diverged: WIDTH > 60")
time.sleep(SLEEP * STEPS)
loss = ((math.log10(LR) + 1.5) ** 2 + ((WIDTH - 40) / 20) ** 2 + {"relu": 0.0, "tanh": 0.3, "sigmoid": 1.0}[ACT]
        + (0.0 if NORM else 0.5) + 2 / STEPS)
with open("result.json", "w") as f:
    json.dump({"loss": loss}, f)
print(f"loss {loss:.4f}")
