"""Baseline PPO (observation normalisation on) for gymnax MountainCarContinuous-v0, 3 seeds at once.

    python train.py            -> checkpoints/seed0.npz seed1.npz seed2.npz + checkpoints/config.json

Everything runs in JAX: the environments are vmapped, a rollout is a lax.scan over time steps,
an update is a lax.scan over epochs and minibatches, and the training seeds are vmapped too.
Python only loops over chunks of updates, to print progress and honour the wall-clock cap.
The checkpoint format is described in README.md; the evaluator re-implements the policy MLP
from it (greedy: the action is the clipped mean), so only the saved arrays matter.
"""
import json
import os
import time

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

# ---- knobs (top-level literals) -------------------------------------------------------------
LEARNING_RATE = 3e-4
TOTAL_ENV_STEPS = 2_000_000  # env steps per training seed at the lite size (x data/budget.json "scale")
NUM_ENVS = 32                # parallel environments per training seed
GAMMA = 0.99
GAE_LAMBDA = 0.95
HIDDEN = 64                  # units in each of the two hidden layers
ENT_COEF = 0.0
# ---- other settings --------------------------------------------------------------------------
ACTIVATION = "tanh"          # tanh | relu | elu | gelu | silu (the evaluator knows these)
NORMALIZE_OBS = True         # running mean/std normalisation of observations (saved in the checkpoint)
NUM_SEEDS = 3                # the evaluator expects exactly 3 checkpoints: seed0..seed2
NUM_STEPS = 128              # rollout length per environment between updates
UPDATE_EPOCHS = 4
NUM_MINIBATCHES = 4
CLIP_EPS = 0.2
VF_COEF = 0.5
MAX_GRAD_NORM = 0.5
SEED = 0
OUT_DIR = "checkpoints"

ENV_NAME = "MountainCarContinuous-v0"
MAX_EPISODE_STEPS = 999      # the task's episode cap (gymnax's and Gymnasium's default)
ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "elu": jax.nn.elu,
               "gelu": jax.nn.gelu, "silu": jax.nn.silu}


def read_budget():
    """data/budget.json (written for each task size): env-step scale and wall-clock cap."""
    try:
        with open(os.path.join("data", "budget.json")) as f:
            return json.load(f)
    except OSError:
        return {"size": "lite", "scale": 1, "wall_clock_s": 1500}


def init_mlp(key, sizes, out_scale):
    """Orthogonal init: sqrt(2) gain on hidden layers, out_scale on the last one."""
    params = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, sub = jax.random.split(key)
        gain = out_scale if i == len(sizes) - 2 else np.sqrt(2)
        params.append((jax.nn.initializers.orthogonal(gain)(sub, (n_in, n_out)), jnp.zeros(n_out)))
    return params


def mlp(params, x):
    act = ACTIVATIONS[ACTIVATION]
    for w, b in params[:-1]:
        x = act(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def normalize(stats, obs):
    mean, var, _ = stats
    return (obs - mean) / jnp.sqrt(var + 1e-8)


def update_stats(stats, batch):
    """Merge a batch of observations into the running (mean, var, count) - parallel algorithm."""
    mean, var, count = stats
    b_mean, b_var, n = batch.mean(0), batch.var(0), batch.shape[0]
    delta, total = b_mean - mean, count + n
    new_mean = mean + delta * n / total
    m2 = var * count + b_var * n + delta ** 2 * count * n / total
    return new_mean, m2 / total, total


def make_train(env, env_params, num_updates):
    obs_dim = env.observation_space(env_params).shape[0]
    tx = optax.chain(optax.clip_by_global_norm(MAX_GRAD_NORM),
                     optax.adam(optax.linear_schedule(LEARNING_RATE, 0.0, num_updates * UPDATE_EPOCHS
                                                      * NUM_MINIBATCHES), eps=1e-5))

    def policy(params, x):  # Gaussian with a state-independent log std
        return mlp(params["actor"], x)[..., 0], params["log_std"]

    def value(params, x):
        return mlp(params["critic"], x)[..., 0]

    def log_prob(mean, log_std, a):
        return -0.5 * ((a - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi)

    def init(key):
        k_actor, k_critic, k_env = jax.random.split(key, 3)
        params = {"actor": init_mlp(k_actor, [obs_dim, HIDDEN, HIDDEN, 1], 0.01),
                  "critic": init_mlp(k_critic, [obs_dim, HIDDEN, HIDDEN, 1], 1.0),
                  "log_std": jnp.zeros(())}
        obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_env, NUM_ENVS), env_params)
        stats = (jnp.zeros(obs_dim), jnp.ones(obs_dim), jnp.array(1e-4))
        return dict(params=params, opt=tx.init(params), state=state, obs=obs, stats=stats,
                    ep_ret=jnp.zeros(NUM_ENVS), key=key)

    def one_update(c, _):
        params, stats = c["params"], c["stats"]
        norm = (lambda o: normalize(stats, o)) if NORMALIZE_OBS else (lambda o: o)

        def env_step(carry, _):
            state, obs, ep_ret, key = carry
            key, k_act, k_env = jax.random.split(key, 3)
            mean, log_std = policy(params, norm(obs))
            action = mean + jnp.exp(log_std) * jax.random.normal(k_act, mean.shape)
            obs2, state, reward, term, trunc, info = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(k_env, NUM_ENVS), state, jnp.clip(action, -1.0, 1.0), env_params)
            done = term | trunc
            # bootstrap from the true last observation when an episode is cut by the time limit
            v_next = value(params, norm(info["final_observation"]))
            ep_ret = ep_ret + reward
            tr = dict(obs=obs, action=action, logp=log_prob(mean, log_std, action),
                      v=value(params, norm(obs)), v_next=v_next, reward=reward, term=term, done=done,
                      finished=jnp.where(done, ep_ret, jnp.nan))
            return (state, obs2, jnp.where(done, 0.0, ep_ret), key), tr

        (state, obs, ep_ret, key), tr = jax.lax.scan(
            env_step, (c["state"], c["obs"], c["ep_ret"], c["key"]), None, NUM_STEPS)

        def gae(adv, t):
            delta = t["reward"] + GAMMA * (1 - t["term"]) * t["v_next"] - t["v"]
            adv = delta + GAMMA * GAE_LAMBDA * (1 - t["done"]) * adv
            return adv, adv

        _, adv = jax.lax.scan(gae, jnp.zeros(NUM_ENVS), tr, reverse=True)
        batch = dict(obs=norm(tr["obs"]), action=tr["action"], logp=tr["logp"], adv=adv,
                     ret=adv + tr["v"])
        batch = jax.tree.map(lambda x: x.reshape((NUM_STEPS * NUM_ENVS,) + x.shape[2:]), batch)

        def loss_fn(p, mb):
            mean, log_std = policy(p, mb["obs"])
            ratio = jnp.exp(log_prob(mean, log_std, mb["action"]) - mb["logp"])
            a = (mb["adv"] - mb["adv"].mean()) / (mb["adv"].std() + 1e-8)
            pg = -jnp.minimum(ratio * a, jnp.clip(ratio, 1 - CLIP_EPS, 1 + CLIP_EPS) * a).mean()
            v_loss = 0.5 * ((value(p, mb["obs"]) - mb["ret"]) ** 2).mean()
            entropy = log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e)
            return pg + VF_COEF * v_loss - ENT_COEF * entropy

        def epoch(carry, key):
            p, opt = carry
            perm = jax.random.permutation(key, NUM_STEPS * NUM_ENVS)
            mbs = jax.tree.map(lambda x: x[perm].reshape((NUM_MINIBATCHES, -1) + x.shape[1:]), batch)

            def minibatch(carry, mb):
                p, opt = carry
                grads = jax.grad(loss_fn)(p, mb)
                upd, opt = tx.update(grads, opt, p)
                return (optax.apply_updates(p, upd), opt), None

            return jax.lax.scan(minibatch, (p, opt), mbs)[0], None

        key, k_epochs = jax.random.split(key)
        (params, opt), _ = jax.lax.scan(epoch, (params, c["opt"]), jax.random.split(k_epochs, UPDATE_EPOCHS))
        if NORMALIZE_OBS:
            stats = update_stats(stats, tr["obs"].reshape(-1, obs_dim))
        c = dict(params=params, opt=opt, state=state, obs=obs, stats=stats, ep_ret=ep_ret, key=key)
        # training episodes that ended in this update: (sum of their returns, how many)
        return c, (jnp.nansum(tr["finished"]), jnp.sum(tr["done"]))

    def run_chunk(c, n):
        return jax.lax.scan(one_update, c, None, n)

    return init, run_chunk


def main():
    budget = read_budget()
    env, env_params = gymnax.make(ENV_NAME)
    env_params = env_params.replace(max_steps_in_episode=MAX_EPISODE_STEPS)
    steps = int(TOTAL_ENV_STEPS * budget["scale"])
    num_updates = max(1, steps // (NUM_ENVS * NUM_STEPS))
    init, run_chunk = make_train(env, env_params, num_updates)
    chunk = max(1, num_updates // 10)
    run = jax.jit(lambda c, n: jax.vmap(lambda x: run_chunk(x, n))(c), static_argnums=1)
    # one seed at a time, then stacked: a vmapped init batches each layer's orthogonal-init QR, and
    # jaxlib's batched QR waits on XLA's intra-op pool from inside it (two at once deadlock 2 CPUs)
    init_one = jax.jit(init)
    seeds = [init_one(k) for k in jax.random.split(jax.random.PRNGKey(SEED), NUM_SEEDS)]
    carry = jax.tree.map(lambda *xs: jnp.stack(xs), *seeds)
    print(f"{ENV_NAME}: {NUM_SEEDS} seeds x {num_updates} updates x {NUM_ENVS * NUM_STEPS} steps "
          f"({num_updates * NUM_ENVS * NUM_STEPS:,} env steps per seed, {budget['size']} budget)", flush=True)
    start, done = time.monotonic(), 0
    while done < num_updates:
        n = min(chunk, num_updates - done)
        carry, (ret_sum, n_eps) = run(carry, n)
        done += n
        elapsed = time.monotonic() - start
        ret_sum, n_eps = np.asarray(ret_sum).sum(1), np.asarray(n_eps).sum(1)
        print(f"update {done}/{num_updates}  {elapsed:6.1f}s  mean training return (sampled actions) per seed: "
              + " ".join(f"{s / k:8.2f}" if k else "     n/a" for s, k in zip(ret_sum, n_eps)), flush=True)
        if elapsed > budget["wall_clock_s"] and done < num_updates:
            print(f"wall-clock cap of {budget['wall_clock_s']} s reached: stopping early")
            break
    save(carry)


def save(carry):
    """checkpoints/seed<k>.npz: actor weights w0,b0,w1,b1,w2,b2 and obs_mean/obs_std."""
    os.makedirs(OUT_DIR, exist_ok=True)
    for k in range(NUM_SEEDS):
        arrays = {}
        for i, (w, b) in enumerate(carry["params"]["actor"]):
            arrays[f"w{i}"], arrays[f"b{i}"] = np.asarray(w[k]), np.asarray(b[k])
        mean, var, _ = (np.asarray(x[k]) for x in carry["stats"])
        if NORMALIZE_OBS:
            arrays["obs_mean"], arrays["obs_std"] = mean, np.sqrt(var + 1e-8)
        else:
            arrays["obs_mean"], arrays["obs_std"] = np.zeros_like(mean), np.ones_like(mean)
        np.savez(os.path.join(OUT_DIR, f"seed{k}.npz"), **{n: a.astype(np.float32) for n, a in arrays.items()})
    with open(os.path.join(OUT_DIR, "config.json"), "w") as f:
        json.dump({"env": ENV_NAME, "hidden": [HIDDEN, HIDDEN], "activation": ACTIVATION}, f)
    print(f"wrote {OUT_DIR}/seed0..{NUM_SEEDS - 1}.npz and {OUT_DIR}/config.json")


if __name__ == "__main__":
    main()
