"""Evaluator for rl_breakout: 3 categorical MLP policies on gymnax Breakout-MinAtar.

Usage: python evaluate.py checkpoints   (the harness sets MLGYM_SEED and the rest: sdk.evaluator)

The artefact and the rollouts are the gymnax family's (pytest_mlgym/sdk/families/gymnax.py): the
observation (10x10x4) is flattened in C order, the action (0 stay, 1 left, 2 right) sampled from
softmax of the policy's 3 outputs; every policy plays 5 x 256 test and 1 x 256 dev episodes of up
to 1000 steps, with keys from this task's secret.
"""
from pytest_mlgym.sdk import evaluator
from pytest_mlgym.sdk.families.gymnax import Spec, categorical

SPEC = Spec(env="Breakout-MinAtar", obs_dim=400, out_dim=3, action=categorical(), max_weights=170_000)

if __name__ == "__main__":
    evaluator.run(SPEC.score)
