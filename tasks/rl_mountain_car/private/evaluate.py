"""Evaluator for rl_mountain_car: 3 Gaussian MLP policies on gymnax MountainCarContinuous-v0.

Usage: python evaluate.py checkpoints   (the harness sets MLGYM_SEED and the rest: sdk.evaluator)

The artefact and the rollouts are the gymnax family's (pytest_mlgym/sdk/families/gymnax.py): the
action is the policy's mean plus exp(log_std) times Gaussian noise, clipped to the action space
[-1, 1]; every policy plays 5 x 256 test and 1 x 256 dev episodes of up to 999 steps, with keys
from this task's secret.
"""
from pytest_mlgym.sdk import evaluator
from pytest_mlgym.sdk.families.gymnax import Spec, gaussian

SPEC = Spec(env="MountainCarContinuous-v0", obs_dim=2, out_dim=1, action=gaussian(-1.0, 1.0))

if __name__ == "__main__":
    evaluator.run(SPEC.score)
