"""Score an rl_breakout artefact: a folder of 3 policy checkpoints for Breakout-MinAtar.

Usage: python evaluate.py checkpoints     (env: MLGYM_SEED, the evaluation seed)

The folder must hold seed0.npz, seed1.npz and seed2.npz (other files are ignored). Each is a
NumPy .npz (read with allow_pickle=False) holding one policy MLP, our own definition of it:
    hidden      int array, 1-3 hidden-layer widths, each 1..512
    activation  string array: "relu" or "tanh"
    w0, b0, ..., wL, bL   float arrays; w0 is (400, hidden[0]), wL is (hidden[-1], 3), b_i (n_out,)
logits = act(... act(x @ w0 + b0) ...) @ wL + bL, x = the 10x10x4 observation flattened in
C order. Actions are SAMPLED from softmax(logits) (the stochastic policy PPO trains).
Each checkpoint plays EPISODES_PER_CHECKPOINT episodes in gymnax's Breakout-MinAtar (default
params); an episode ends when the ball is lost or at gymnax's time limit (1000 steps).
Last stdout line: {"mean_return": ..., "std_return": ..., ...} or {"invalid": "reason"}; exit 0.
"""
import functools
import json
import os
import sys
import zipfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # same numbers on any machine

N_SEEDS = 3
EPISODES_PER_CHECKPOINT = 384  # 1152 episodes in all
MAX_LAYERS, MAX_WIDTH = 3, 512
OBS_DIM, N_ACTIONS = 400, 3
MAX_FILE_BYTES = 20 * 1024 * 1024


class Invalid(Exception):
    pass


def load_checkpoint(path):
    """Validated (layers, activation) of one checkpoint; Invalid(reason) otherwise."""
    import numpy as np

    name = os.path.basename(path)
    if os.path.islink(path) or not os.path.isfile(path):
        raise Invalid(f"{name} missing (need seed0.npz..seed{N_SEEDS - 1}.npz as regular files)")
    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise Invalid(f"{name} is larger than {MAX_FILE_BYTES} bytes")
    try:
        with zipfile.ZipFile(path) as z:  # refuse compression bombs before decompressing
            if sum(i.file_size for i in z.infolist()) > 4 * MAX_FILE_BYTES:
                raise Invalid(f"{name}: arrays larger than {4 * MAX_FILE_BYTES} bytes in all")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise Invalid(f"{name}: not a readable .npz of plain arrays: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300])
    hidden = arrays.get("hidden")
    if hidden is None or "activation" not in arrays:
        raise Invalid(f"{name}: needs config arrays 'hidden' and 'activation'")
    if hidden.dtype.kind not in "iu" or hidden.ndim != 1 or not 1 <= len(hidden) <= MAX_LAYERS \
            or hidden.min() < 1 or hidden.max() > MAX_WIDTH:
        raise Invalid(f"{name}: 'hidden' must be 1-{MAX_LAYERS} integer widths in 1..{MAX_WIDTH}, got {hidden.tolist()!r}"[:300])
    act = arrays["activation"]
    if act.dtype.kind != "U" or act.shape != () or str(act) not in ("relu", "tanh"):
        raise Invalid(f"{name}: 'activation' must be the string 'relu' or 'tanh'")
    sizes = [OBS_DIM, *(int(h) for h in hidden), N_ACTIONS]
    expected = {f"{p}{i}": shape for i in range(len(sizes) - 1)
                for p, shape in (("w", (sizes[i], sizes[i + 1])), ("b", (sizes[i + 1],)))}
    extra = sorted(set(arrays) - set(expected) - {"hidden", "activation"})
    if extra:
        raise Invalid(f"{name}: unexpected array(s) {extra[:5]}")
    layers = []
    for i in range(len(sizes) - 1):
        pair = []
        for key in (f"w{i}", f"b{i}"):
            a = arrays.get(key)
            if a is None:
                raise Invalid(f"{name}: array '{key}' missing")
            if a.dtype.kind != "f" or a.shape != expected[key]:
                raise Invalid(f"{name}: '{key}' must be a float array of shape {expected[key]}, got {a.dtype} {a.shape}")
            if not np.all(np.isfinite(a)):
                raise Invalid(f"{name}: '{key}' has NaN or inf values")
            pair.append(a.astype(np.float32))
        layers.append(tuple(pair))
    return layers, str(act)


@functools.lru_cache(maxsize=None)
def runner(activation, n_episodes):
    """A jitted fn(layers, key) -> returns of n_episodes episodes, run in lockstep until all end.

    Layers are an argument, so checkpoints of the same shapes share one compilation.
    """
    import jax
    import jax.numpy as jnp
    import gymnax

    env, params = gymnax.make("Breakout-MinAtar")
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[activation]

    def policy(layers, x):
        for w, b in layers[:-1]:
            x = act(x @ w + b)
        w, b = layers[-1]
        return x @ w + b

    def body(c):
        layers, obs, state, key, ret, alive, t = c
        key, k_act, k_env = jax.random.split(key, 3)
        action = jax.random.categorical(k_act, policy(layers, obs.reshape(n_episodes, OBS_DIM)))
        obs, state, reward, term, trunc, _ = jax.vmap(env.step, (0, 0, 0, None))(
            jax.random.split(k_env, n_episodes), state, action, params)
        ret = ret + jnp.where(alive, reward, 0.0)
        alive = alive & ~(term | trunc)  # the env auto-resets; steps after an episode's end don't count
        return layers, obs, state, key, ret, alive, t + 1

    @jax.jit
    def run(layers, key):
        k_reset, key = jax.random.split(key)
        obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, n_episodes), params)
        c = (layers, obs, state, key, jnp.zeros(n_episodes), jnp.ones(n_episodes, bool), 0)
        c = jax.lax.while_loop(lambda c: c[5].any() & (c[6] <= params.max_steps_in_episode), body, c)
        return c[4]

    return run


def main():
    if len(sys.argv) != 2:
        print(json.dumps({"invalid": "usage: evaluate.py ARTEFACT"}))
        return
    try:
        folder = sys.argv[1]
        if os.path.islink(folder) or not os.path.isdir(folder):
            raise Invalid(f"{folder} must be a folder holding seed0.npz..seed{N_SEEDS - 1}.npz")
        checkpoints = [load_checkpoint(os.path.join(folder, f"seed{k}.npz")) for k in range(N_SEEDS)]
        import jax
        import numpy as np

        key = jax.random.PRNGKey(int(os.environ.get("MLGYM_SEED", "0")))
        returns = [np.asarray(runner(act, EPISODES_PER_CHECKPOINT)(layers, jax.random.fold_in(key, k)))
                   for k, (layers, act) in enumerate(checkpoints)]
        allr = np.concatenate(returns)
        out = {"mean_return": round(float(allr.mean()), 4), "std_return": round(float(allr.std()), 4),
               "episodes": int(allr.size), "policy": "sampled"}
        out.update({f"mean_return_seed{k}": round(float(r.mean()), 4) for k, r in enumerate(returns)})
        print(json.dumps(out))
    except Invalid as e:
        print(json.dumps({"invalid": str(e)}))
    except Exception as e:  # never crash on a bad artefact
        print(json.dumps({"invalid": f"could not score: {type(e).__name__}: {e}".splitlines()[0][:300]}))


if __name__ == "__main__":
    main()
