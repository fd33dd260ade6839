"""Evaluator for rl_meta_maze: 3 categorical MLP policies on gymnax MetaMaze-misc.

Usage: python evaluate.py checkpoints   (the harness sets MLGYM_SEED and the rest: sdk.evaluator)

The artefact and the rollouts are the gymnax family's (pytest_mlgym/sdk/families/gymnax.py): the
action (0 up, 1 right, 2 down, 3 left) is sampled from softmax of the policy's 4 outputs; every
policy plays 5 x 256 test and 1 x 256 dev episodes of 200 steps, with keys from this task's secret.
"""
from pytest_mlgym.sdk import evaluator
from pytest_mlgym.sdk.families.gymnax import Spec, categorical

SPEC = Spec(env="MetaMaze-misc", obs_dim=15, out_dim=4, action=categorical())

if __name__ == "__main__":
    evaluator.run(SPEC.score)
