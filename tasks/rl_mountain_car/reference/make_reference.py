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
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

TASK = Path(__file__).resolve().parents[1]
SETTINGS = {"GAMMA": 0.999, "TOTAL_ENV_STEPS": 4_000_000}


def main():
    sys.path.insert(0, str(TASK.parents[1]))  # the repository's engine
    from pytest_mlgym.task import load_task

    sample = sys.argv[1:] == ["--sample"]
    work = Path(tempfile.mkdtemp(prefix="rl_mountain_car_ref-"))
    try:
        load_task(TASK).copy_workspace(work / "ws")
        os.chdir(work / "ws")
        sys.path.insert(0, str(work / "ws"))
        train, ppo = importlib.import_module("train"), importlib.import_module("gymnax_ppo")
        if sample:
            env, env_params = ppo.make_env(train)
            init, _ = ppo.make_train(train, train.POLICY, env, env_params, num_updates=1)
            ppo.save(train, train.POLICY, ppo.init_seeds(train, init))
            out = TASK / "workspace" / "sample_checkpoints"
        else:
            for name, value in SETTINGS.items():
                setattr(train, name, value)
            train.POLICY = ppo.Gaussian(low=-1.0, high=1.0, clip=False)
            train.main()
            out = TASK / "reference" / "checkpoints"
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(work / "ws" / train.OUT_DIR, out)
        print(f"wrote {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
