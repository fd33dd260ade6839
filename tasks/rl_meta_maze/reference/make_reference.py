"""Make the reference checkpoints (and the sample artefact) of rl_meta_maze.

    python reference/make_reference.py            # -> reference/checkpoints/
    python reference/make_reference.py --sample   # -> workspace/sample_checkpoints/

Both run in a scratch copy of the agent's workspace (workspace/ and the gymnax_ppo.py task.yaml
includes). The reference is the baseline train.py with tuned settings (SETTINGS below): a higher
learning rate, a longer discount horizon with a shorter GAE lambda, a wider network, more
parallel environments and a longer run. --sample writes an untrained network (the
initialisation, no update) in the same format.
"""
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

TASK = Path(__file__).resolve().parents[1]
SETTINGS = {"LEARNING_RATE": 1e-3, "GAMMA": 0.995, "GAE_LAMBDA": 0.9, "HIDDEN": 128, "NUM_ENVS": 64,
            "TOTAL_ENV_STEPS": 4_000_000}


def main():
    sys.path.insert(0, str(TASK.parents[1]))  # the repository's engine
    from pytest_mlgym.task import load_task

    sample = sys.argv[1:] == ["--sample"]
    work = Path(tempfile.mkdtemp(prefix="rl_meta_maze_ref-"))
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
            train.main()
            out = TASK / "reference" / "checkpoints"
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(work / "ws" / train.OUT_DIR, out)
        print(f"wrote {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
