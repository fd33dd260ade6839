"""Make the reference checkpoints (and the sample artefact) of rl_mountain_car.

Run it from a copy of the workspace, then copy the result back into the task folder:

    cp -r workspace /tmp/ws && cp reference/make_reference.py /tmp/ws && cd /tmp/ws
    python make_reference.py            # -> checkpoints/          (copy to reference/checkpoints/)
    python make_reference.py --sample   # -> sample_checkpoints/   (copy to workspace/sample_checkpoints/)

The reference is the baseline train.py with two changes:
1. the environment gets the raw sampled action, not the clipped one. gymnax charges
   -0.1 * action**2 on the raw action while clipping the force, so a policy mean beyond
   [-1, 1] now costs reward: the baseline's means sit around |2.5| (bang-bang control,
   ~74 steps, ~7 reward of action cost), the reference's near 1 and below;
2. GAMMA 0.999 (instead of 0.99) and twice the env steps (4M per seed), so a slower but
   cheaper swing-up is worth learning: ~95.8 greedy return instead of ~93.0.
--sample writes an untrained network (the initialisation, no update) in the same format.
"""
import sys
import types

import jax

PATCHES = [  # (baseline text, reference text): each must occur exactly once in train.py
    ("state, jnp.clip(action, -1.0, 1.0), env_params)", "state, action, env_params)"),
]
SETTINGS = {"GAMMA": 0.999, "TOTAL_ENV_STEPS": 4_000_000}


def load_train(patches):
    source = open("train.py").read()
    for old, new in patches:
        assert source.count(old) == 1, f"train.py changed: cannot apply the patch {old!r}"
        source = source.replace(old, new)
    module = types.ModuleType("train")
    module.__file__ = "train.py"
    exec(compile(source, "train.py", "exec"), module.__dict__)
    return module


def main():
    if sys.argv[1:] == ["--sample"]:
        train = load_train([])
        train.OUT_DIR = "sample_checkpoints"
        env, env_params = train.gymnax.make(train.ENV_NAME)
        init, _ = train.make_train(env, env_params, num_updates=1)
        keys = jax.random.split(jax.random.PRNGKey(train.SEED), train.NUM_SEEDS)
        train.save(jax.vmap(init)(keys))
        return
    train = load_train(PATCHES)
    for name, value in SETTINGS.items():
        setattr(train, name, value)
    train.main()


if __name__ == "__main__":
    main()
