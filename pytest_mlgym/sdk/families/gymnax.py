"""Policy-rollout evaluators for gymnax tasks: a folder of MLP policies, played in the simulator.

The artefact is a folder (one policy per training seed; no agent code runs, only numbers are read):

    config.json    {"env": ENV, "hidden": [64, 64], "activation": "tanh"}   (read through :class:`Config`)
    seed0.npz ...  exactly w0, b0, ..., wL, bL, obs_mean, obs_std and the action rule's own arrays
                   (a Gaussian's log_std): float arrays, read without pickle (sdk.readers.npz)

The policy is ``x = (obs.reshape(-1) - obs_mean) / obs_std``, ``x = act(x @ w + b)`` for every hidden
layer, ``out = x @ wL + bL``; the task's action rule turns ``out`` into an action, sampling from the
policy's distribution with a key stream of its own (:func:`categorical`, :func:`gaussian`). Each
policy plays ``batches[split]`` batches of ``batch`` episodes (the whole episode: to gymnax's time
limit or the end), every batch with its own environment key and action key, drawn from the task's
secret stream (``Context.numpy_stream``) per split: the agent cannot know them, dev and test are
disjoint. A task's ``private/evaluate.py`` declares its :class:`Spec` and hands over::

    from pytest_mlgym.sdk import evaluator
    from pytest_mlgym.sdk.families.gymnax import Spec, categorical

    SPEC = Spec(env="MetaMaze-misc", obs_dim=15, out_dim=4, action=categorical())
    if __name__ == "__main__":
        evaluator.run(SPEC.score)

Metrics per split: ``mean_return`` (all episodes of all policies), ``std_return`` and ``seed_means``
(one per policy); the episode counts are the task's documented constants.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from .. import readers
from ..evaluator import Context, EvaluatorError, Invalid

Activation = Literal["tanh", "relu", "elu", "gelu", "silu"]  # gelu: jax's default (tanh approximation)
ACTIVATIONS: tuple[Activation, ...] = get_args(Activation)


@dataclass(frozen=True)
class ActionRule:
    """How a policy's output becomes an action: ``sample(out, arrays, key)``, vectorised over episodes.
    ``arrays``: the rule's own checkpoint arrays, ``{name: (shape, low, high)}`` (values in [low, high])."""

    name: str
    sample: Callable
    arrays: dict = field(default_factory=dict)


def categorical() -> ActionRule:
    """A discrete action sampled from ``softmax(out)`` (out = the logits)."""
    def sample(out, arrays, key):
        import jax

        return jax.random.categorical(key, out)

    return ActionRule("categorical", sample)


def gaussian(low: float, high: float, dims: int = 1) -> ActionRule:
    """A continuous action ``out + exp(log_std) * N(0, 1)`` (out = the mean), clipped to the action
    space [low, high]; ``log_std`` (shape (dims,), in [-20, 5]) is a checkpoint array."""
    def sample(out, arrays, key):
        import jax
        import jax.numpy as jnp

        a = out + jnp.exp(arrays["log_std"]) * jax.random.normal(key, out.shape)
        a = jnp.clip(a, low, high)
        return a[..., 0] if dims == 1 else a

    return ActionRule("gaussian", sample, {"log_std": ((dims,), -20.0, 5.0)})


def _spec(info: ValidationInfo) -> Spec:
    """The :class:`Spec` a :class:`Config` is validated against (its ``context``)."""
    if info.context is None:
        raise TypeError("validate a Config with context={'spec': spec}")
    return info.context["spec"]


class Config(BaseModel):
    """``config.json`` of a checkpoint folder; validated against the task's :class:`Spec`
    (passed as ``context={"spec": spec}``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    env: str
    hidden: list[int]
    activation: Activation

    @field_validator("env")
    @classmethod
    def _env(cls, value: str, info: ValidationInfo) -> str:
        spec = _spec(info)
        if value != spec.env:
            raise ValueError(f'must be "{spec.env}"')
        return value

    @field_validator("hidden")
    @classmethod
    def _hidden(cls, value: list[int], info: ValidationInfo) -> list[int]:
        spec = _spec(info)
        if not 1 <= len(value) <= spec.max_layers or not all(1 <= h <= spec.max_width for h in value):
            raise ValueError(f"must be a list of 1 to {spec.max_layers} layer widths, each an integer in "
                             f"[1, {spec.max_width}]")
        if (n := spec.weights(value)) > spec.max_weights:
            raise ValueError(f"the network has {n:,} weights; at most {spec.max_weights:,} are allowed")
        return value


@dataclass(frozen=True)
class Spec:
    """What a gymnax policy task declares: its environment, shapes, action rule and episode counts."""

    env: str  # gymnax.make name; the environment's default parameters
    obs_dim: int  # the observation, flattened in C order
    out_dim: int  # the MLP's outputs (logits of each action, or the mean action)
    action: ActionRule
    seeds: int = 3  # policies seed0.npz .. seed{seeds-1}.npz
    batches: dict = field(default_factory=lambda: {"test": 5, "dev": 1})  # batches of episodes per policy
    batch: int = 256  # episodes in a batch (each batch has its own environment and action keys)
    max_layers: int = 3
    max_width: int = 256
    max_weights: int = 80_000  # bounds the evaluation time
    max_npz_bytes: int = 16 << 20  # one checkpoint file, on disk and uncompressed

    def weights(self, hidden: list[int]) -> int:
        sizes = [self.obs_dim, *hidden, self.out_dim]
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    @property
    def files(self) -> list[str]:
        return ["config.json"] + [f"seed{k}.npz" for k in range(self.seeds)]

    def shapes(self, hidden: list[int]) -> dict[str, tuple]:
        """The arrays of one checkpoint and their shapes."""
        sizes = [self.obs_dim, *hidden, self.out_dim]
        out: dict[str, tuple[int, ...]] = {}
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            out[f"w{i}"], out[f"b{i}"] = (n_in, n_out), (n_out,)
        out["obs_mean"] = out["obs_std"] = (self.obs_dim,)
        return out | {name: shape for name, (shape, _, _) in self.action.arrays.items()}

    # -- reading --------------------------------------------------------------------------------
    def read(self, folder) -> tuple[Config, dict]:
        """The config and the policies' arrays, stacked along a leading seed axis (float32)."""
        folder = readers.folder(folder, self.files)
        config = readers.json_model(folder / "config.json", Config, max_bytes=10_000, context={"spec": self})
        policies = [self._checkpoint(folder / f"seed{k}.npz", config.hidden) for k in range(self.seeds)]
        return config, {k: np.stack([p[k] for p in policies]) for k in policies[0]}

    def _checkpoint(self, path, hidden) -> dict:
        shapes = self.shapes(hidden)
        arrays = readers.npz(path, keys=set(shapes), max_bytes=self.max_npz_bytes)
        bounds = {"obs_std": (1e-8, np.inf)} | {n: (lo, hi) for n, (_, lo, hi) in self.action.arrays.items()}
        for k, shape in shapes.items():
            a = arrays[k]
            if a.dtype.kind != "f":
                raise Invalid(f"{path.name}: array {k} has dtype {a.dtype}, expected a float type")
            if a.shape != shape:
                raise Invalid(f"{path.name}: array {k} has shape {a.shape}, expected {shape} (from config.json)")
            if not np.all(np.isfinite(a)):
                raise Invalid(f"{path.name}: array {k} contains NaN or inf")
            if k in bounds and not np.all((a >= bounds[k][0]) & (a <= bounds[k][1])):
                low, high = bounds[k]
                raise Invalid(f"{path.name}: {k} must lie in [{low:g}, {high:g}]" if np.isfinite(high)
                              else f"{path.name}: {k} must be positive (>= {low:g})")
        return {k: arrays[k].astype(np.float32) for k in shapes}

    # -- scoring --------------------------------------------------------------------------------
    def keys(self, ctx: Context) -> dict[str, np.ndarray]:
        """Per split, ``(seeds, batches, 2, 2)`` raw threefry keys (environment, action) from the
        task's secret stream: deterministic for the task and seed, unknown to the agent."""
        return {split: ctx.numpy_stream("gymnax rollouts", split).integers(
                    0, 2**32, size=(self.seeds, n, 2, 2), dtype=np.uint64).astype(np.uint32)
                for split, n in self.batches.items()}

    def score(self, ctx: Context) -> dict:
        keys = self.keys(ctx)  # before reading: a missing secret is the harness's error, not the agent's
        config, params = self.read(ctx.artefact)
        splits = list(keys)
        ret = self.returns(config.activation, params, np.concatenate([keys[s] for s in splits], axis=1))
        out, at = {}, 0
        for split in splits:
            r = ret[:, at:at + self.batches[split]].reshape(self.seeds, -1)
            at += self.batches[split]
            out[split] = {"mean_return": _round(r.mean()), "std_return": _round(r.std()),
                          "seed_means": [_round(m) for m in r.mean(1)]}
        return out

    def returns(self, activation: str, params: dict, keys: np.ndarray) -> np.ndarray:
        """Episode returns, shape ``(seeds, batches, batch)``, for ``keys`` of shape (seeds, batches, 2, 2)."""
        os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the same numbers on any machine
        import gymnax
        import jax
        import jax.numpy as jnp

        act = {"tanh": jnp.tanh, "relu": jax.nn.relu, "elu": jax.nn.elu,
               "gelu": jax.nn.gelu, "silu": jax.nn.silu}[activation]
        n_layers = sum(k.startswith("w") for k in params)
        env, env_params = gymnax.make(self.env)
        cap, n = int(env_params.max_steps_in_episode), self.batch
        rule = self.action

        def policy(p, obs):
            x = (obs.reshape(n, self.obs_dim) - p["obs_mean"]) / p["obs_std"]
            for i in range(n_layers):
                x = x @ p[f"w{i}"] + p[f"b{i}"]
                if i < n_layers - 1:
                    x = act(x)
            return x

        def episodes(p, key):
            k_env, k_act = key[0], key[1]
            k_reset, k_steps = jax.random.split(k_env)
            obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, n), env_params)

            def step(c):
                t, obs, state, ret, alive = c
                action = rule.sample(policy(p, obs), p, jax.random.fold_in(k_act, t))
                obs, state, reward, term, trunc, _ = jax.vmap(env.step, (0, 0, 0, None))(
                    jax.random.split(jax.random.fold_in(k_steps, t), n), state, action, env_params)
                ret = ret + jnp.where(alive, reward, 0.0)  # gymnax auto-resets: later steps do not count
                return t + 1, obs, state, ret, alive & ~(term | trunc)

            init = (0, obs, state, jnp.zeros(n), jnp.ones(n, bool))
            _, _, _, ret, alive = jax.lax.while_loop(lambda c: (c[0] < cap) & c[4].any(), step, init)
            return ret, alive

        per_policy = jax.vmap(episodes, (None, 0))  # the batches of one policy
        ret, alive = jax.jit(jax.vmap(per_policy))(params, jnp.asarray(keys))
        if bool(alive.any()):
            raise EvaluatorError(f"an episode of {self.env} outlived gymnax's time limit of {cap} steps")
        return np.asarray(ret, dtype=np.float64)


def _round(x) -> float:
    return round(float(x), 4) + 0.0  # + 0.0: no "-0.0"


def make_reference(task_dir: Path, settings: dict, policy=None, sample: bool = False) -> Path:
    """Train a task's reference checkpoints (its workspace train.py with ``settings`` and, if given,
    ``policy(ppo)`` as the policy), or with ``sample`` its untrained sample artefact, and write them
    into the task folder (``reference/checkpoints`` or ``workspace/sample_checkpoints``). For the
    tasks' ``reference/make_reference.py`` scripts; never run by the harness."""
    import importlib
    import os
    import shutil
    import sys
    import tempfile

    from ...task import load_task

    work, cwd = Path(tempfile.mkdtemp(prefix=f"{Path(task_dir).name}_ref-")), os.getcwd()
    try:
        load_task(Path(task_dir)).copy_workspace(work / "ws")
        os.chdir(work / "ws")
        sys.path.insert(0, str(work / "ws"))
        # the task's own train.py, whose settings are module globals set here
        train: Any = importlib.import_module("train")
        ppo = importlib.import_module("gymnax_ppo")
        if sample:
            env, env_params = ppo.make_env(train)
            init, _ = ppo.make_train(train, train.POLICY, env, env_params, num_updates=1)
            ppo.save(train, train.POLICY, ppo.init_seeds(train, init))
            out = Path(task_dir) / "workspace" / "sample_checkpoints"
        else:
            for name, value in settings.items():
                setattr(train, name, value)
            if policy is not None:
                train.POLICY = policy(ppo)
            train.main()
            out = Path(task_dir) / "reference" / "checkpoints"
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(work / "ws" / train.OUT_DIR, out)
        return out
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
