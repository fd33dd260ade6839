"""Make the reference checkpoints (and the sample artefact) of rl_mountain_car.

    python reference/make_reference.py            # -> reference/checkpoints/
    python reference/make_reference.py --sample   # -> workspace/sample_checkpoints/

Both run in a scratch copy of the agent's workspace (workspace/ and the gymnax_ppo.py task.yaml
includes). The reference is the baseline train.py with two changes:
1. the environment gets the raw sampled action, not the clipped one (Gaussian(clip=False)).
   gymnax charges -0.1 * action**2 on the raw action while clipping the force, so a policy mean
   beyond [-1, 1] now costs reward in training: the baseline's means sit around |2.5|
   (bang-bang control, ~74 steps), the reference's near 1 and below;
2. GAMMA 0.999 (instead of 0.99) and twice the env steps (4M per seed), so a slower but
   cheaper swing-up is worth learning.
--sample writes an untrained network (the initialisation, no update) in the same format.
"""
import sys
from pathlib import Path

TASK = Path(__file__).resolve().parents[1]
SETTINGS = {"GAMMA": 0.999, "TOTAL_ENV_STEPS": 4_000_000}


def POLICY(ppo):  # noqa: N802 - the policy head, from the workspace's gymnax_ppo module
    return ppo.Gaussian(low=-1.0, high=1.0, clip=False)


if __name__ == "__main__":
    sys.path.insert(0, str(TASK.parents[1]))  # the repository's engine
    from pytest_mlgym.sdk.families.gymnax import make_reference

    print("wrote", make_reference(TASK, SETTINGS, POLICY, sample=sys.argv[1:] == ["--sample"]))
