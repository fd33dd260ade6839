"""Plain PPO on Breakout-MinAtar (gymnax), 3 training seeds trained side by side.

Run: python train.py   ->  writes checkpoints/config.json, seed0.npz, seed1.npz, seed2.npz

Everything runs inside jax.jit: env steps in jax.lax.scan, envs and seeds in jax.vmap.
Training runs TOTAL_STEPS x scale env steps per seed, scale and a wall-clock cap coming from
data/budget.json (written for the task size: lite scale 1, full scale 10); the cap is checked
between chunks of updates and a capped run prints a warning (and is no longer reproducible).
Checkpoint format (what the evaluator reads; see README.md): config.json (env, hidden widths,
activation) and per seed the policy MLP's weights w0, b0, ..., wL, bL with obs_mean, obs_std.
"""
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import gymnax

# ---- knobs ------------------------------------------------------------------------------------
LEARNING_RATE = 5e-4
TOTAL_STEPS = 1_000_000  # env steps per training seed at the lite size (x "scale" in data/budget.json)
NUM_ENVS = 64  # parallel envs per training seed
GAMMA = 0.99
HIDDEN = 64  # width of each of the 2 hidden layers (policy and value nets alike)
ENT_COEF = 0.01
# ---- fixed settings ---------------------------------------------------------------------------
N_SEEDS = 3  # the evaluator needs seed0..seed2
ROLLOUT = 128  # env steps per env between updates
EPOCHS, MINIBATCHES = 4, 4
CLIP, GAE_LAMBDA, VF_COEF, MAX_GRAD_NORM = 0.2, 0.95, 0.5, 0.5
ACTIVATION = "relu"  # relu or tanh here (the evaluator also knows elu, gelu, silu)
OUT_DIR = "checkpoints"

env, env_params = gymnax.make("Breakout-MinAtar")
N_ACTIONS = env.num_actions  # 3: no-op, left, right
OBS_DIM = 400  # 10x10x4 binary observation, flattened
act_fn = {"relu": jax.nn.relu, "tanh": jnp.tanh}[ACTIVATION]


def init_mlp(key, sizes, out_scale):
    """Orthogonal init; the last layer is scaled by out_scale."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, sub = jax.random.split(key)
        scale = out_scale if i == len(sizes) - 2 else np.sqrt(2)
        layers.append((jax.nn.initializers.orthogonal(scale)(sub, (n_in, n_out)), jnp.zeros(n_out)))
    return layers


def mlp(layers, x):
    for w, b in layers[:-1]:
        x = act_fn(x @ w + b)
    w, b = layers[-1]
    return x @ w + b


def init_params(key):
    k_pi, k_v = jax.random.split(key)
    return {"pi": init_mlp(k_pi, [OBS_DIM, HIDDEN, HIDDEN, N_ACTIONS], 0.01),
            "v": init_mlp(k_v, [OBS_DIM, HIDDEN, HIDDEN, 1], 1.0)}


def forward(params, obs):
    x = obs.reshape(obs.shape[:-3] + (OBS_DIM,))
    return mlp(params["pi"], x), mlp(params["v"], x)[..., 0]


optimizer = optax.chain(optax.clip_by_global_norm(MAX_GRAD_NORM), optax.adam(LEARNING_RATE, eps=1e-5))
CHUNK = 10  # updates per jitted call (the wall-clock cap is checked between calls)


def read_budget():
    """data/budget.json: env-step scale and wall-clock cap of this task size (lite if absent)."""
    try:
        with open(os.path.join("data", "budget.json")) as f:
            return json.load(f)
    except OSError:
        return {"size": "lite", "scale": 1, "wall_clock_s": 1200}


def init_state(key):
    k_param, k_env, k_run = jax.random.split(key, 3)
    params = init_params(k_param)
    obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(k_env, NUM_ENVS), env_params)
    return dict(params=params, opt=optimizer.init(params), obs=obs, env_state=env_state, key=k_run,
                ep_ret=jnp.zeros(NUM_ENVS))


def ppo_loss(params, batch):
    logits, value = forward(params, batch["obs"])
    logp_all = jax.nn.log_softmax(logits)
    logp = jnp.take_along_axis(logp_all, batch["action"][:, None], 1)[:, 0]
    ratio = jnp.exp(logp - batch["logp"])
    adv = (batch["adv"] - batch["adv"].mean()) / (batch["adv"].std() + 1e-8)
    pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - CLIP, 1 + CLIP) * adv).mean()
    v_loss = 0.5 * ((value - batch["ret"]) ** 2).mean()
    entropy = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
    return pg + VF_COEF * v_loss - ENT_COEF * entropy


def update(state, _):
    """One PPO iteration: collect ROLLOUT steps from every env, then EPOCHS x MINIBATCHES updates."""
    def env_step(carry, _):
        obs, env_state, key, ep_ret = carry
        key, k_act, k_env = jax.random.split(key, 3)
        logits, value = forward(state["params"], obs)
        action = jax.random.categorical(k_act, logits)
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], 1)[:, 0]
        obs2, env_state, reward, term, trunc, _ = jax.vmap(env.step, (0, 0, 0, None))(
            jax.random.split(k_env, NUM_ENVS), env_state, action, env_params)
        done = jnp.logical_or(term, trunc)  # plain PPO: a time-out is treated like a real end
        ep_ret = ep_ret + reward
        step = dict(obs=obs, action=action, logp=logp, value=value, reward=reward, done=done,
                    finished=jnp.where(done, ep_ret, 0.0))
        return (obs2, env_state, key, jnp.where(done, 0.0, ep_ret)), step

    carry = (state["obs"], state["env_state"], state["key"], state["ep_ret"])
    (obs, env_state, key, ep_ret), traj = jax.lax.scan(env_step, carry, None, ROLLOUT)

    # Generalised advantage estimation, backwards in time.
    _, last_value = forward(state["params"], obs)

    def gae_step(carry, t):
        gae, next_value = carry
        nonterminal = 1.0 - t["done"]
        delta = t["reward"] + GAMMA * next_value * nonterminal - t["value"]
        gae = delta + GAMMA * GAE_LAMBDA * nonterminal * gae
        return (gae, t["value"]), gae

    _, adv = jax.lax.scan(gae_step, (jnp.zeros(NUM_ENVS), last_value), traj, reverse=True)
    batch = dict(obs=traj["obs"], action=traj["action"], logp=traj["logp"], adv=adv, ret=adv + traj["value"])
    batch = jax.tree.map(lambda x: x.reshape((ROLLOUT * NUM_ENVS,) + x.shape[2:]), batch)

    def epoch(carry, k):
        params, opt = carry
        perm = jax.random.permutation(k, ROLLOUT * NUM_ENVS)
        mbs = jax.tree.map(lambda x: x[perm].reshape((MINIBATCHES, -1) + x.shape[1:]), batch)

        def minibatch(carry, mb):
            params, opt = carry
            grads = jax.grad(ppo_loss)(params, mb)
            upd, opt = optimizer.update(grads, opt, params)
            return (optax.apply_updates(params, upd), opt), None

        return jax.lax.scan(minibatch, (params, opt), mbs)[0], None

    key, k_epochs = jax.random.split(key)
    (params, opt), _ = jax.lax.scan(epoch, (state["params"], state["opt"]), jax.random.split(k_epochs, EPOCHS))
    new = dict(params=params, opt=opt, obs=obs, env_state=env_state, key=key, ep_ret=ep_ret)
    stats = (traj["finished"].sum(), traj["done"].sum())  # returns of finished episodes, and their count
    return new, stats


@jax.jit
def train_chunk(states):
    """CHUNK PPO iterations for every seed at once (seeds along the leading axis)."""
    return jax.vmap(lambda s: jax.lax.scan(update, s, None, CHUNK))(states)


def main():
    start = time.time()
    budget = read_budget()
    # whole chunks of CHUNK updates, each update ROLLOUT steps of NUM_ENVS envs
    updates = CHUNK * max(1, round(TOTAL_STEPS * budget["scale"] / (NUM_ENVS * ROLLOUT * CHUNK)))
    print(f"{budget['size']} budget: {updates * NUM_ENVS * ROLLOUT:,} env steps per seed, {N_SEEDS} seeds, "
          f"wall-clock cap {budget['wall_clock_s']} s", flush=True)
    # one seed at a time, then stacked: a vmapped init batches each layer's orthogonal-init QR, and
    # jaxlib's batched QR waits on XLA's intra-op pool from inside it (two at once deadlock 2 CPUs)
    seeds = [init_state(k) for k in jax.random.split(jax.random.PRNGKey(0), N_SEEDS)]
    states = jax.tree.map(lambda *xs: jnp.stack(xs), *seeds)
    done_updates = 0
    while done_updates < updates:
        states, (ret_sum, n_done) = train_chunk(states)
        done_updates += CHUNK
        mean_ret = np.asarray(ret_sum.sum(1)) / np.maximum(np.asarray(n_done.sum(1)), 1)
        elapsed = time.time() - start
        print(f"steps/seed {done_updates * NUM_ENVS * ROLLOUT:>9,}  {elapsed:6.1f}s  "
              f"train return per seed: {' '.join(f'{r:6.2f}' for r in mean_ret)}", flush=True)
        if elapsed > budget["wall_clock_s"] and done_updates < updates:
            print(f"WARNING: wall-clock cap of {budget['wall_clock_s']} s reached; saving early")
            break

    os.makedirs(OUT_DIR, exist_ok=True)
    pi = states["params"]["pi"]  # only the policy is saved; the evaluator needs no value net
    for k in range(N_SEEDS):
        arrays = {}
        for i, (w, b) in enumerate(pi):
            arrays[f"w{i}"] = np.asarray(w[k], np.float32)
            arrays[f"b{i}"] = np.asarray(b[k], np.float32)
        # no observation normalisation here: the identity (x - 0) / 1
        arrays["obs_mean"], arrays["obs_std"] = np.zeros(OBS_DIM, np.float32), np.ones(OBS_DIM, np.float32)
        np.savez(os.path.join(OUT_DIR, f"seed{k}.npz"), **arrays)
    with open(os.path.join(OUT_DIR, "config.json"), "w") as f:
        json.dump({"env": "Breakout-MinAtar", "hidden": [w.shape[-1] for w, _ in pi[:-1]], "activation": ACTIVATION}, f)
    print(f"wrote {OUT_DIR}/seed0..{N_SEEDS - 1}.npz and {OUT_DIR}/config.json after {time.time() - start:.1f}s")


if __name__ == "__main__":
    main()
