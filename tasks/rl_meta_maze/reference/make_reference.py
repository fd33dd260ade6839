"""Make the reference checkpoints (and the sample artefact) of rl_meta_maze.

    python reference/make_reference.py            # -> reference/checkpoints/
    python reference/make_reference.py --sample   # -> workspace/sample_checkpoints/

Both run in a scratch copy of the agent's workspace (workspace/ and the gymnax_ppo.py task.yaml
includes). The reference is the baseline train.py with tuned settings (SETTINGS below): a higher
learning rate, a longer discount horizon with a shorter GAE lambda, a wider network, more
parallel environments and a longer run. --sample writes an untrained network (the
initialisation, no update) in the same format.
"""
import sys
from pathlib import Path

TASK = Path(__file__).resolve().parents[1]
SETTINGS = {"LEARNING_RATE": 1e-3, "GAMMA": 0.995, "GAE_LAMBDA": 0.9, "HIDDEN": 128, "NUM_ENVS": 64,
            "TOTAL_ENV_STEPS": 4_000_000}
POLICY = None  # the policy head, from the workspace's gymnax_ppo module (None: train.py's own)


if __name__ == "__main__":
    sys.path.insert(0, str(TASK.parents[1]))  # the repository's engine
    from pytest_mlgym.sdk.families.gymnax import make_reference

    print("wrote", make_reference(TASK, SETTINGS, POLICY, sample=sys.argv[1:] == ["--sample"]))
