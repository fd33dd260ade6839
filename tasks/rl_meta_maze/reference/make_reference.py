"""Make the reference checkpoints (and the sample artefact) of rl_meta_maze.

Run it from a copy of the workspace, then copy the result back into the task folder:

    cp -r workspace /tmp/ws && cp reference/make_reference.py /tmp/ws && cd /tmp/ws
    python make_reference.py            # -> checkpoints/          (copy to reference/checkpoints/)
    python make_reference.py --sample   # -> sample_checkpoints/   (copy to workspace/sample_checkpoints/)

The reference is the baseline train.py with tuned settings (SETTINGS below): a higher
learning rate, a longer discount horizon with a shorter GAE lambda, a wider network, more
parallel environments and a longer run. --sample writes an untrained network (the
initialisation, no update) in the same format.
"""
import sys
import types

import jax

SETTINGS = {"LEARNING_RATE": 1e-3, "GAMMA": 0.995, "GAE_LAMBDA": 0.9, "HIDDEN": 128, "NUM_ENVS": 64,
            "TOTAL_ENV_STEPS": 4_000_000}


def load_train():
    module = types.ModuleType("train")
    module.__file__ = "train.py"
    exec(compile(open("train.py").read(), "train.py", "exec"), module.__dict__)
    return module


def main():
    train = load_train()
    if sys.argv[1:] == ["--sample"]:
        train.OUT_DIR = "sample_checkpoints"
        env, env_params = train.gymnax.make(train.ENV_NAME)
        init, _ = train.make_train(env, env_params, num_updates=1)
        keys = jax.random.split(jax.random.PRNGKey(train.SEED), train.NUM_SEEDS)
        train.save(jax.vmap(init)(keys))
        return
    for name, value in SETTINGS.items():
        setattr(train, name, value)
    train.main()


if __name__ == "__main__":
    main()
