"""Evaluator for rl_meta_maze: greedy returns of 3 PPO checkpoints on gymnax MetaMaze-misc.

Usage: python evaluate.py checkpoints      (env MLGYM_SEED, default 0)

The artefact is a folder holding config.json and seed0.npz, seed1.npz, seed2.npz (one per
training seed). No agent code runs: this file has its own copy of the policy network (an MLP)
and reads only numeric arrays (np.load with allow_pickle=False). Each checkpoint plays
EPISODES episodes of at most MAX_STEPS steps; the action is the argmax of the network's
4 outputs (logits), i.e. the greedy policy.
Last stdout line: {"mean_return": ..., "std_return": ..., ...} or {"invalid": reason}.
"""
import json
import os
import sys
import zipfile

import numpy as np

ENV_NAME = "MetaMaze-misc"
MAX_STEPS = 200             # episode length (gymnax's default for this env)
SEEDS = 3                   # checkpoints seed0.npz .. seed2.npz
EPISODES = 1024             # per checkpoint: 3072 episodes in total
OBS_DIM, OUT_DIM = 15, 4    # observation (3x3 view, last action one-hot, last reward, time) -> logits
MAX_LAYERS, MAX_WIDTH = 3, 256
MAX_WEIGHTS = 80_000        # bounds the evaluation time (e.g. 2 x 256 fits, 3 x 256 does not)
MAX_ARRAY_BYTES = 16 << 20  # uncompressed size of one npz file
ACTIVATIONS = ("tanh", "relu", "elu", "gelu", "silu")


class Invalid(Exception):
    pass


def load_config(folder):
    path = os.path.join(folder, "config.json")
    if os.path.getsize(path) > 10_000:
        raise Invalid("config.json is larger than 10 kB")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise Invalid(f"config.json is not valid JSON: {e}") from None
    if not isinstance(cfg, dict) or set(cfg) != {"env", "hidden", "activation"}:
        raise Invalid('config.json must be an object with exactly the keys "env", "hidden", "activation"')
    if cfg["env"] != ENV_NAME:
        raise Invalid(f'config.json: "env" must be "{ENV_NAME}"')
    hidden = cfg["hidden"]
    if (not isinstance(hidden, list) or not 1 <= len(hidden) <= MAX_LAYERS
            or not all(type(h) is int and 1 <= h <= MAX_WIDTH for h in hidden)):
        raise Invalid(f'config.json: "hidden" must be a list of 1 to {MAX_LAYERS} layer widths, '
                      f"each an integer in [1, {MAX_WIDTH}]")
    sizes = [OBS_DIM, *hidden, OUT_DIM]
    n_weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    if n_weights > MAX_WEIGHTS:
        raise Invalid(f"config.json: the network has {n_weights:,} weights; at most {MAX_WEIGHTS:,} are allowed")
    if cfg["activation"] not in ACTIVATIONS:
        raise Invalid(f'config.json: "activation" must be one of {", ".join(ACTIVATIONS)}')
    return hidden, cfg["activation"]


def load_checkpoint(path, hidden):
    """The arrays of one checkpoint as float32, checked against the config's shapes."""
    name = os.path.basename(path)
    sizes = [OBS_DIM, *hidden, OUT_DIM]
    shapes = {"obs_mean": (OBS_DIM,), "obs_std": (OBS_DIM,)}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"w{i}"], shapes[f"b{i}"] = (n_in, n_out), (n_out,)
    try:
        with zipfile.ZipFile(path) as zf:
            if sum(info.file_size for info in zf.infolist()) > MAX_ARRAY_BYTES:
                raise Invalid(f"{name} is larger than {MAX_ARRAY_BYTES >> 20} MB uncompressed")
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if keys != set(shapes):
                missing, extra = sorted(set(shapes) - keys), sorted(keys - set(shapes))
                raise Invalid(f"{name}: arrays must be exactly {', '.join(shapes)}"
                              + (f"; missing {', '.join(missing)}" if missing else "")
                              + (f"; unexpected {', '.join(extra)}" if extra else ""))
            arrays = {k: z[k] for k in shapes}
    except Invalid:
        raise
    except Exception as e:  # not a zip / npz, object arrays (pickles refused), corrupt members...
        raise Invalid(f"{name} is not a readable .npz of numeric arrays ({type(e).__name__}: "
                      f"{' '.join(str(e).split())[:120]})") from None
    for k, a in arrays.items():
        if a.dtype.kind != "f":
            raise Invalid(f"{name}: array {k} has dtype {a.dtype}, expected a float type")
        if a.shape != shapes[k]:
            raise Invalid(f"{name}: array {k} has shape {a.shape}, expected {shapes[k]} (from config.json)")
        if not np.all(np.isfinite(a)):
            raise Invalid(f"{name}: array {k} contains NaN or inf")
        arrays[k] = a.astype(np.float32)
    if not np.all(arrays["obs_std"] >= 1e-8):
        raise Invalid(f"{name}: obs_std must be positive (>= 1e-8)")
    return arrays


def load_artefact(folder):
    if os.path.islink(folder) or not os.path.isdir(folder):
        raise Invalid(f"{os.path.basename(folder)} must be a folder holding config.json and "
                      f"seed0.npz .. seed{SEEDS - 1}.npz")
    expected = ["config.json"] + [f"seed{k}.npz" for k in range(SEEDS)]
    present = sorted(os.listdir(folder))
    extra = [n for n in present if n not in expected]
    if extra:
        raise Invalid(f"unexpected file(s) in the checkpoint folder: {', '.join(extra)[:200]} "
                      f"(only {', '.join(expected)})")
    for n in expected:
        if not os.path.isfile(os.path.join(folder, n)) or os.path.islink(os.path.join(folder, n)):
            raise Invalid(f"missing {n} in the checkpoint folder")
    hidden, activation = load_config(folder)
    ckpts = [load_checkpoint(os.path.join(folder, f"seed{k}.npz"), hidden) for k in range(SEEDS)]
    return activation, {k: np.stack([c[k] for c in ckpts]) for k in ckpts[0]}


def rollout_returns(activation, params, seed):
    """Returns of EPISODES greedy episodes per checkpoint, shape (SEEDS, EPISODES)."""
    import gymnax
    import jax
    import jax.numpy as jnp

    act = {"tanh": jnp.tanh, "relu": jax.nn.relu, "elu": jax.nn.elu,
           "gelu": jax.nn.gelu, "silu": jax.nn.silu}[activation]
    n_layers = sum(k.startswith("w") for k in params)
    env, env_params = gymnax.make(ENV_NAME)
    env_params = env_params.replace(max_steps_in_episode=MAX_STEPS)

    def policy(p, obs):
        x = (obs - p["obs_mean"]) / p["obs_std"]
        for i in range(n_layers):
            x = x @ p[f"w{i}"] + p[f"b{i}"]
            if i < n_layers - 1:
                x = act(x)
        return jnp.argmax(x, axis=-1)

    def episodes(p, key):
        k_reset, k_steps = jax.random.split(key)
        obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, EPISODES), env_params)

        def step(carry):
            t, obs, state, ret, alive = carry
            obs, state, reward, term, trunc, _ = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(jax.random.fold_in(k_steps, t), EPISODES), state, policy(p, obs), env_params)
            ret = ret + jnp.where(alive, reward, 0.0)
            return t + 1, obs, state, ret, alive & ~(term | trunc)

        # stop as soon as every episode has ended (the cap guarantees it by MAX_STEPS)
        init = (0, obs, state, jnp.zeros(EPISODES), jnp.ones(EPISODES, bool))
        _, _, _, ret, alive = jax.lax.while_loop(lambda c: (c[0] < MAX_STEPS) & c[4].any(), step, init)
        return ret, alive

    keys = jax.random.split(jax.random.PRNGKey(seed), SEEDS)
    ret, alive = jax.jit(jax.vmap(episodes))(params, keys)
    assert not bool(alive.any()), "an episode outlived the step cap"
    return np.asarray(ret, dtype=np.float64)


def main():
    if len(sys.argv) != 2:
        print(json.dumps({"invalid": "usage: evaluate.py CHECKPOINT_FOLDER"}))
        return
    seed = int(os.environ.get("MLGYM_SEED") or 0)
    try:
        activation, params = load_artefact(os.path.abspath(sys.argv[1]))
        ret = rollout_returns(activation, params, seed)
        result = {"mean_return": round(float(ret.mean()), 4), "std_return": round(float(ret.std()), 4),
                  "seed_means": [round(float(m), 4) for m in ret.mean(1)],
                  "episodes": int(ret.size), "policy": "greedy"}
    except Invalid as e:
        result = {"invalid": " ".join(str(e).split())[:300]}
    except Exception as e:  # never crash on a bad artefact
        result = {"invalid": f"evaluation error: {type(e).__name__}: {' '.join(str(e).split())}"[:300]}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
