"""Baseline PPO for gymnax MountainCarContinuous-v0, 3 seeds at once (observation normalisation on).

    python train.py            -> checkpoints/seed0.npz seed1.npz seed2.npz + checkpoints/config.json

The algorithm is gymnax_ppo.py (a compact PPO in JAX; change it, or replace it, as you like); this
file holds its settings and the policy: a Gaussian with a learned log std, whose samples are
clipped to the action space [-1, 1] before the environment gets them. The evaluator has its own
copy of the policy network and reads only the saved arrays (README.md).
"""
import os
import sys

import gymnax_ppo as ppo

# ---- knobs (top-level literals) -------------------------------------------------------------
LEARNING_RATE = 3e-4
TOTAL_ENV_STEPS = 2_000_000  # env steps per training seed at the lite size (x data/budget.json "scale")
NUM_ENVS = 32                # parallel environments per training seed
GAMMA = 0.99
GAE_LAMBDA = 0.95
HIDDEN = 64                  # units in each of the two hidden layers
ENT_COEF = 0.0
# ---- other settings --------------------------------------------------------------------------
ACTIVATION = "tanh"          # tanh | relu | elu | gelu | silu (the evaluator knows these)
NORMALIZE_OBS = True         # running mean/std normalisation of observations (saved in the checkpoint)
NUM_SEEDS = 3                # the evaluator expects exactly 3 checkpoints: seed0..seed2
NUM_STEPS = 128              # rollout length per environment between updates
UPDATE_EPOCHS = 4
NUM_MINIBATCHES = 4
CLIP_EPS = 0.2
VF_COEF = 0.5
MAX_GRAD_NORM = 0.5
SEED = int(os.environ.get("MLGYM_SEED", "0"))  # the episode seed (the harness sets it; 0 when run by hand)
OUT_DIR = "checkpoints"

ENV_NAME = "MountainCarContinuous-v0"
MAX_EPISODE_STEPS = 999      # the task's episode cap (gymnax's and Gymnasium's default)
POLICY = ppo.Gaussian(low=-1.0, high=1.0)


def main():
    ppo.main(sys.modules[__name__], POLICY)


if __name__ == "__main__":
    main()
