"""A compact PPO for gymnax environments, in JAX + optax: what train.py runs.

    import gymnax_ppo as ppo
    ppo.main(settings, ppo.Categorical(4))    # settings: train.py itself (its upper-case constants)

Actor and critic are separate MLPs (orthogonal init), the policy a categorical or a Gaussian
(`Categorical`, `Gaussian` below), advantages by GAE, the clipped PPO objective, Adam with a
linearly decaying learning rate and running observation normalisation. The environments are
vmapped and a rollout is a `jax.lax.scan` over time steps, an update a `lax.scan` over epochs and
minibatches; the training seeds are vmapped too. Python only loops over chunks of updates, to
print progress and stop at the budget's wall-clock cap. The same file ships with every gymnax
task; it reads nothing task-specific but `settings` and the policy. Change anything here: only the
checkpoint files it writes (see README.md) are scored.

`settings` is any object with the attributes LEARNING_RATE, TOTAL_ENV_STEPS, NUM_ENVS, GAMMA,
GAE_LAMBDA, HIDDEN, ENT_COEF, ACTIVATION, NORMALIZE_OBS, NUM_SEEDS, NUM_STEPS, UPDATE_EPOCHS,
NUM_MINIBATCHES, CLIP_EPS, VF_COEF, MAX_GRAD_NORM, SEED, OUT_DIR, ENV_NAME, MAX_EPISODE_STEPS.
"""
import json
import os
import time
from typing import Any

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "elu": jax.nn.elu,
               "gelu": jax.nn.gelu, "silu": jax.nn.silu}


class Categorical:
    """A discrete action from softmax(logits); `dist` is the log-probabilities of every action."""

    def __init__(self, num_actions):
        self.out_dim = num_actions

    def init(self):
        return {}

    def dist(self, params, out):
        return jax.nn.log_softmax(out)

    def sample(self, logp_all, key):
        return jax.random.categorical(key, logp_all)

    def log_prob(self, logp_all, a):
        return jnp.take_along_axis(logp_all, a[..., None], -1)[..., 0]

    def entropy(self, logp_all):
        return -(jnp.exp(logp_all) * logp_all).sum(-1).mean()

    def env_action(self, a):
        return a

    def arrays(self, params, k):
        return {}


class Gaussian:
    """One continuous action: a Gaussian with a state-independent, learned log std; `dist` is
    (mean, log_std). The environment gets the sample clipped to [low, high]."""

    out_dim = 1

    def __init__(self, low, high, clip=True):
        self.low, self.high, self.clip = low, high, clip

    def init(self):
        return {"log_std": jnp.zeros(())}

    def dist(self, params, out):
        return out[..., 0], params["log_std"]

    def sample(self, dist, key):
        mean, log_std = dist
        return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)

    def log_prob(self, dist, a):
        mean, log_std = dist
        return -0.5 * ((a - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi)

    def entropy(self, dist):
        return dist[1] + 0.5 * jnp.log(2 * jnp.pi * jnp.e)

    def env_action(self, a):
        return jnp.clip(a, self.low, self.high) if self.clip else a

    def arrays(self, params, k):
        return {"log_std": np.asarray(params["log_std"][k]).reshape(1)}


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


def mlp(params, x, activation):
    act = ACTIVATIONS[activation]
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


def make_train(s, head, env, env_params, num_updates):
    """(init(key) -> carry of one seed, run_chunk(carry, n) -> (carry, per-update stats))."""
    obs_dim = env.observation_space(env_params).shape[0]
    tx = optax.chain(optax.clip_by_global_norm(s.MAX_GRAD_NORM),
                     optax.adam(optax.linear_schedule(s.LEARNING_RATE, 0.0, num_updates * s.UPDATE_EPOCHS
                                                      * s.NUM_MINIBATCHES), eps=1e-5))

    def policy(params, x):
        return head.dist(params, mlp(params["actor"], x, s.ACTIVATION))

    def value(params, x):
        return mlp(params["critic"], x, s.ACTIVATION)[..., 0]

    def init(key):
        k_actor, k_critic, k_env = jax.random.split(key, 3)
        params = {"actor": init_mlp(k_actor, [obs_dim, s.HIDDEN, s.HIDDEN, head.out_dim], 0.01),
                  "critic": init_mlp(k_critic, [obs_dim, s.HIDDEN, s.HIDDEN, 1], 1.0), **head.init()}
        obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_env, s.NUM_ENVS), env_params)
        stats = (jnp.zeros(obs_dim), jnp.ones(obs_dim), jnp.array(1e-4))
        return dict(params=params, opt=tx.init(params), state=state, obs=obs, stats=stats,
                    ep_ret=jnp.zeros(s.NUM_ENVS), key=key)

    def one_update(c, _):
        params, stats = c["params"], c["stats"]
        norm = (lambda o: normalize(stats, o)) if s.NORMALIZE_OBS else (lambda o: o)

        def env_step(carry, _):
            state, obs, ep_ret, key = carry
            key, k_act, k_env = jax.random.split(key, 3)
            dist = policy(params, norm(obs))
            action = head.sample(dist, k_act)
            obs2, state, reward, term, trunc, info = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(k_env, s.NUM_ENVS), state, head.env_action(action), env_params)
            done = term | trunc
            # bootstrap from the true last observation when an episode is cut by the time limit
            v_next = value(params, norm(info["final_observation"]))
            ep_ret = ep_ret + reward
            tr = dict(obs=obs, action=action, logp=head.log_prob(dist, action),
                      v=value(params, norm(obs)), v_next=v_next, reward=reward, term=term, done=done,
                      finished=jnp.where(done, ep_ret, jnp.nan))
            return (state, obs2, jnp.where(done, 0.0, ep_ret), key), tr

        (state, obs, ep_ret, key), tr = jax.lax.scan(
            env_step, (c["state"], c["obs"], c["ep_ret"], c["key"]), None, s.NUM_STEPS)

        def gae(adv, t):
            delta = t["reward"] + s.GAMMA * (1 - t["term"]) * t["v_next"] - t["v"]
            adv = delta + s.GAMMA * s.GAE_LAMBDA * (1 - t["done"]) * adv
            return adv, adv

        _, adv = jax.lax.scan(gae, jnp.zeros(s.NUM_ENVS), tr, reverse=True)
        batch = dict(obs=norm(tr["obs"]), action=tr["action"], logp=tr["logp"], adv=adv,
                     ret=adv + tr["v"])
        batch = jax.tree.map(lambda x: x.reshape((s.NUM_STEPS * s.NUM_ENVS,) + x.shape[2:]), batch)

        def loss_fn(p, mb):
            dist = policy(p, mb["obs"])
            ratio = jnp.exp(head.log_prob(dist, mb["action"]) - mb["logp"])
            a = (mb["adv"] - mb["adv"].mean()) / (mb["adv"].std() + 1e-8)
            pg = -jnp.minimum(ratio * a, jnp.clip(ratio, 1 - s.CLIP_EPS, 1 + s.CLIP_EPS) * a).mean()
            v_loss = 0.5 * ((value(p, mb["obs"]) - mb["ret"]) ** 2).mean()
            return pg + s.VF_COEF * v_loss - s.ENT_COEF * head.entropy(dist)

        def epoch(carry, key):
            p, opt = carry
            perm = jax.random.permutation(key, s.NUM_STEPS * s.NUM_ENVS)
            mbs = jax.tree.map(lambda x: x[perm].reshape((s.NUM_MINIBATCHES, -1) + x.shape[1:]), batch)

            def minibatch(carry, mb):
                p, opt = carry
                grads = jax.grad(loss_fn)(p, mb)
                upd, opt = tx.update(grads, opt, p)
                return (optax.apply_updates(p, upd), opt), None

            return jax.lax.scan(minibatch, (p, opt), mbs)[0], None

        key, k_epochs = jax.random.split(key)
        (params, opt), _ = jax.lax.scan(epoch, (params, c["opt"]), jax.random.split(k_epochs, s.UPDATE_EPOCHS))
        if s.NORMALIZE_OBS:
            stats = update_stats(stats, tr["obs"].reshape(-1, obs_dim))
        c = dict(params=params, opt=opt, state=state, obs=obs, stats=stats, ep_ret=ep_ret, key=key)
        # training episodes that ended in this update: (sum of their returns, how many)
        return c, (jnp.nansum(tr["finished"]), jnp.sum(tr["done"]))

    def run_chunk(c, n):
        return jax.lax.scan(one_update, c, None, n)

    return init, run_chunk


def make_env(s):
    env, env_params = gymnax.make(s.ENV_NAME)
    return env, env_params.replace(max_steps_in_episode=s.MAX_EPISODE_STEPS)


def init_seeds(s, init):
    """The NUM_SEEDS initial carries, stacked. One seed at a time: a vmapped init batches each
    layer's orthogonal-init QR, and jaxlib's batched QR waits on XLA's intra-op pool from inside
    it (two at once deadlock 2 CPUs)."""
    init_one = jax.jit(init)
    seeds = [init_one(k) for k in jax.random.split(jax.random.PRNGKey(s.SEED), s.NUM_SEEDS)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *seeds)


def main(s, head):
    budget = read_budget()
    env, env_params = make_env(s)
    steps = int(s.TOTAL_ENV_STEPS * budget["scale"])
    num_updates = max(1, steps // (s.NUM_ENVS * s.NUM_STEPS))
    init, run_chunk = make_train(s, head, env, env_params, num_updates)
    chunk = max(1, num_updates // 10)
    run = jax.jit(lambda c, n: jax.vmap(lambda x: run_chunk(x, n))(c), static_argnums=1)
    carry = init_seeds(s, init)
    print(f"{s.ENV_NAME}: {s.NUM_SEEDS} seeds x {num_updates} updates x {s.NUM_ENVS * s.NUM_STEPS} steps "
          f"({num_updates * s.NUM_ENVS * s.NUM_STEPS:,} env steps per seed, {budget['size']} budget)", flush=True)
    start, done = time.monotonic(), 0
    while done < num_updates:
        n = min(chunk, num_updates - done)
        carry, (ret_sum, n_eps) = run(carry, n)
        done += n
        elapsed = time.monotonic() - start
        ret_sum, n_eps = np.asarray(ret_sum).sum(1), np.asarray(n_eps).sum(1)
        print(f"update {done}/{num_updates}  {elapsed:6.1f}s  mean training return (sampled actions) per seed: "
              + " ".join(f"{r / k:8.2f}" if k else "     n/a" for r, k in zip(ret_sum, n_eps)), flush=True)
        if elapsed > budget["wall_clock_s"] and done < num_updates:
            print(f"wall-clock cap of {budget['wall_clock_s']} s reached: stopping early")
            break
    save(s, head, carry)


def save(s, head, carry):
    """OUT_DIR/seed<k>.npz (the actor's w0, b0, ..., obs_mean, obs_std and the policy's own
    arrays) and OUT_DIR/config.json."""
    os.makedirs(s.OUT_DIR, exist_ok=True)
    for k in range(s.NUM_SEEDS):
        arrays = {}
        for i, (w, b) in enumerate(carry["params"]["actor"]):
            arrays[f"w{i}"], arrays[f"b{i}"] = np.asarray(w[k]), np.asarray(b[k])
        mean, var, _ = (np.asarray(x[k]) for x in carry["stats"])
        if s.NORMALIZE_OBS:
            arrays["obs_mean"], arrays["obs_std"] = mean, np.sqrt(var + 1e-8)
        else:
            arrays["obs_mean"], arrays["obs_std"] = np.zeros_like(mean), np.ones_like(mean)
        arrays.update(head.arrays(carry["params"], k))
        as_f32: dict[str, Any] = {n: a.astype(np.float32) for n, a in arrays.items()}
        np.savez(os.path.join(s.OUT_DIR, f"seed{k}.npz"), **as_f32)
    with open(os.path.join(s.OUT_DIR, "config.json"), "w") as f:
        json.dump({"env": s.ENV_NAME, "hidden": [s.HIDDEN, s.HIDDEN], "activation": s.ACTIVATION}, f)
    print(f"wrote {s.OUT_DIR}/seed0..{s.NUM_SEEDS - 1}.npz and {s.OUT_DIR}/config.json")
