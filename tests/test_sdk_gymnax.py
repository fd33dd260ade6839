"""The gymnax policy-rollout family (pytest_mlgym/sdk/families/gymnax.py): the checkpoint folder
reader refuses every malformed folder with a one-line reason before any JAX work, the rollouts are
deterministic for a task and seed, the keys come from the task's secret (dev and test disjoint),
and the action rules sample as documented. The shipped RL tasks' own specs are used, imported
from their evaluators (each task's end-to-end tests are in tasks/<id>/tests/)."""
from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from pytest_mlgym.sdk import Invalid
from pytest_mlgym.sdk.evaluator import Context
from pytest_mlgym.sdk.families import gymnax as family

TASKS = Path(__file__).resolve().parent.parent / "tasks"
RL_TASKS = ["rl_mountain_car", "rl_meta_maze", "rl_breakout"]


def spec_of(task: str) -> family.Spec:
    path = TASKS / task / "private" / "evaluate.py"
    module_spec = importlib.util.spec_from_file_location(f"evaluate_{task}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.SPEC


SPECS = {t: spec_of(t) for t in RL_TASKS}
MC = SPECS["rl_mountain_car"]


def write(folder: Path, spec: family.Spec, hidden=(8, 8), activation="tanh", config=None, seed=0) -> Path:
    """A valid (random) checkpoint folder for ``spec``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(spec.seeds):
        arrays = {name: (rng.normal(0, 0.1, shape) if name[0] in "wb" else np.zeros(shape)).astype(np.float32)
                  for name, shape in spec.shapes(list(hidden)).items()}
        arrays["obs_std"] = np.ones(spec.obs_dim, np.float32)
        np.savez(folder / f"seed{k}.npz", **arrays)
    cfg = config if config is not None else {"env": spec.env, "hidden": list(hidden), "activation": activation}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def edit(path: Path, **changes):
    with np.load(path) as z:
        arrays = dict(z)
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(path, **arrays)


def invalid(folder: Path, spec: family.Spec = MC, *words) -> str:
    with pytest.raises(Invalid) as e:
        spec.read(folder)
    reason = str(e.value)
    assert reason and "\n" not in reason
    for w in words:
        assert w in reason, reason
    return reason


class Boom:
    """Unpickling this would create a marker file: the reader must never unpickle."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---- a valid folder -----------------------------------------------------------------------------
@pytest.mark.parametrize("task", RL_TASKS)
def test_a_valid_folder_is_read_as_float32_arrays_stacked_by_seed(tmp_path, task):
    spec = SPECS[task]
    config, params = spec.read(write(tmp_path / "checkpoints", spec, hidden=(16, 8, 4), activation="gelu"))
    assert config.hidden == [16, 8, 4] and config.activation == "gelu"
    assert set(params) == set(spec.shapes([16, 8, 4]))
    assert params["w0"].shape == (spec.seeds, spec.obs_dim, 16) and params["w3"].shape == (spec.seeds, 4, spec.out_dim)
    assert all(a.dtype == np.float32 for a in params.values())


def test_float16_and_float64_arrays_are_accepted(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    edit(ck / "seed0.npz", w0=np.zeros((2, 8), np.float16), b1=np.zeros(8, np.float64))
    assert MC.read(ck)[1]["w0"].dtype == np.float32


# ---- the folder ---------------------------------------------------------------------------------
def test_missing_seed_file(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    (ck / "seed2.npz").unlink()
    invalid(ck, MC, "missing seed2.npz")


def test_missing_config(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    (ck / "config.json").unlink()
    invalid(ck, MC, "missing config.json")


def test_unexpected_extra_file(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    (ck / "seed3.npz").write_bytes((ck / "seed0.npz").read_bytes())
    invalid(ck, MC, "unexpected file", "seed3.npz")


def test_artefact_that_is_a_file_not_a_folder(tmp_path):
    path = tmp_path / "checkpoints"
    path.write_bytes(b"PK\x03\x04 not a folder")
    invalid(path, MC, "must be a folder")


def test_linked_files_are_refused(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    (ck / "seed2.npz").unlink()
    (ck / "seed2.npz").symlink_to(ck / "seed1.npz")
    invalid(ck, MC, "missing seed2.npz")
    (tmp_path / "linked").symlink_to(ck)
    invalid(tmp_path / "linked", MC, "must be a folder")


# ---- the arrays ---------------------------------------------------------------------------------
def test_wrong_weight_shape(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    edit(ck / "seed1.npz", w1=np.zeros((8, 9), np.float32))
    invalid(ck, MC, "seed1.npz", "w1", "shape")


@pytest.mark.parametrize("task", RL_TASKS)
def test_shapes_must_match_the_config(tmp_path, task):
    spec = SPECS[task]
    ck = write(tmp_path / "checkpoints", spec, config={"env": spec.env, "hidden": [16, 8], "activation": "tanh"})
    invalid(ck, spec, "w0", f"expected ({spec.obs_dim}, 16)")


def test_missing_and_extra_arrays(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    edit(ck / "seed0.npz", obs_std=None, value_w0=np.zeros(1, np.float32))
    invalid(ck, MC, "seed0.npz", "missing obs_std", "unexpected value_w0")


def test_a_missing_layer(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    edit(ck / "seed2.npz", w2=None)
    invalid(ck, MC, "seed2.npz", "missing w2")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters(tmp_path, value):
    ck = write(tmp_path / "checkpoints", MC)
    w = np.zeros((8, 8), np.float32)
    w[3, 4] = value
    edit(ck / "seed0.npz", w1=w)
    invalid(ck, MC, "seed0.npz", "NaN or inf")


def test_integer_arrays_are_refused(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    edit(ck / "seed0.npz", b0=np.zeros(8, np.int64))
    invalid(ck, MC, "dtype int64")


def test_non_positive_obs_std(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    edit(ck / "seed2.npz", obs_std=np.array([1.0, 0.0], np.float32))
    invalid(ck, MC, "seed2.npz: obs_std must be positive")


@pytest.mark.parametrize("value", [-21.0, 6.0])
def test_a_gaussian_log_std_out_of_range(tmp_path, value):
    ck = write(tmp_path / "checkpoints", MC)
    edit(ck / "seed1.npz", log_std=np.array([value], np.float32))
    invalid(ck, MC, "seed1.npz: log_std must lie in [-20, 5]")


def test_a_categorical_policy_has_no_log_std(tmp_path):
    spec = SPECS["rl_meta_maze"]
    ck = write(tmp_path / "checkpoints", spec)
    edit(ck / "seed0.npz", log_std=np.zeros(1, np.float32))
    invalid(ck, spec, "unexpected log_std")


def test_object_array_is_refused_without_unpickling(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    marker = tmp_path / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = Boom(marker)
    edit(ck / "seed0.npz", w0=payload)
    invalid(ck, MC, "seed0.npz", "not a readable .npz")
    assert not marker.exists()


def test_a_pickle_named_npz_is_refused(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    marker = tmp_path / "pwned"
    (ck / "seed1.npz").write_bytes(pickle.dumps(Boom(marker)))
    invalid(ck, MC, "seed1.npz", "not a readable .npz")
    assert not marker.exists()


def test_junk_bytes_are_refused(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    (ck / "seed2.npz").write_bytes(b"\x00junk" * 50)
    invalid(ck, MC, "seed2.npz is not a readable .npz")


def test_oversized_npz_is_refused_before_decompressing(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    np.savez_compressed(ck / "seed0.npz", w0=np.zeros(5_000_000, np.float32))  # 20 MB of zeros, tiny on disk
    invalid(ck, MC, "seed0.npz", "larger than")


# ---- config.json --------------------------------------------------------------------------------
@pytest.mark.parametrize("task, config, words", [
    ("rl_mountain_car", {"hidden": [8, 8], "activation": "sigmoid"}, ["activation: Input should be 'tanh'"]),
    ("rl_mountain_car", {"hidden": [8, 8], "activation": None}, ["activation:"]),
    ("rl_mountain_car", {"hidden": [8, 8, 8, 8], "activation": "tanh"}, ["hidden: must be a list of 1 to 3"]),
    ("rl_mountain_car", {"hidden": [], "activation": "tanh"}, ["hidden: must be a list of 1 to 3"]),
    ("rl_mountain_car", {"hidden": [0], "activation": "tanh"}, ["each an integer in [1, 256]"]),
    ("rl_mountain_car", {"hidden": [300], "activation": "tanh"}, ["each an integer in [1, 256]"]),
    ("rl_breakout", {"hidden": [512], "activation": "relu"}, ["each an integer in [1, 256]"]),
    ("rl_mountain_car", {"hidden": [256, 256, 256], "activation": "tanh"}, ["131,840 weights; at most 80,000"]),
    ("rl_breakout", {"hidden": [256, 256, 256], "activation": "relu"}, ["234,240 weights; at most 170,000"]),
    ("rl_mountain_car", {"hidden": [8, True], "activation": "tanh"}, ["hidden.1: Input should be a valid integer"]),
    ("rl_mountain_car", {"hidden": [8.0], "activation": "tanh"}, ["hidden.0: Input should be a valid integer"]),
    ("rl_mountain_car", {"hidden": "8", "activation": "tanh"}, ["hidden: Input should be a valid list"]),
    ("rl_mountain_car", {"env": "MetaMaze-misc", "hidden": [8, 8], "activation": "tanh"},
     ['env: must be "MountainCarContinuous-v0"']),
    ("rl_mountain_car", {"hidden": [8, 8]}, ["activation: Field required"]),
    ("rl_mountain_car", {"hidden": [8, 8], "activation": "tanh", "extra": 1}, ["extra: Extra inputs are not permitted"]),
    ("rl_mountain_car", [8, 8], ["(top level): Input should be"]),
])
def test_bad_config(tmp_path, task, config, words):
    spec = SPECS[task]
    if isinstance(config, dict):
        config = {"env": spec.env, **config}
    ck = write(tmp_path / "checkpoints", spec, config=config)
    invalid(ck, spec, "config.json", *words)


def test_config_that_is_not_json(tmp_path):
    ck = write(tmp_path / "checkpoints", MC)
    (ck / "config.json").write_bytes(b"\xff\xfe{hidden: 8")
    invalid(ck, MC, "config.json is not UTF-8 text")
    (ck / "config.json").write_text("{hidden: 8")
    invalid(ck, MC, "config.json is not valid JSON")


# ---- keys and rollouts --------------------------------------------------------------------------
def context(task_dir: Path, artefact: Path, seed: int = 0) -> Context:
    return Context(artefact=artefact, size="lite", seed=seed, task_dir=task_dir, private_dir=None, public_dir=None)


def secret_folder(tmp_path: Path, secret: str) -> Path:
    (tmp_path / "task" / "private").mkdir(parents=True, exist_ok=True)
    (tmp_path / "task" / "private" / "secret").write_text(secret)
    return tmp_path / "task"


def test_keys_come_from_the_secret_per_split_and_seed(tmp_path):
    a = secret_folder(tmp_path / "a", "11" * 32)
    b = secret_folder(tmp_path / "b", "22" * 32)
    keys = MC.keys(context(a, tmp_path))
    assert {s: k.shape for s, k in keys.items()} == {"test": (3, 5, 2, 2), "dev": (3, 1, 2, 2)}
    assert all(k.dtype == np.uint32 for k in keys.values())
    assert np.array_equal(keys["test"], MC.keys(context(a, tmp_path))["test"])  # deterministic
    assert not np.array_equal(keys["test"], MC.keys(context(b, tmp_path))["test"])  # the secret decides...
    assert not np.array_equal(keys["test"], MC.keys(context(a, tmp_path, seed=1))["test"])  # ...with the seed
    every = np.concatenate([keys["test"], keys["dev"]], axis=1).reshape(-1, 2)
    assert len({tuple(k) for k in every}) == len(every)  # every batch, environment and action: its own key


# JAX runs in a child process: a pytest process that imported it would later fork (every evaluator
# run does) with JAX's threads alive, which can deadlock.
ROLLOUTS = """
import json, sys
import numpy as np
import jax, jax.numpy as jnp
from pytest_mlgym.sdk.families import gymnax as family

out = {}
spec = family.Spec(env="MetaMaze-misc", obs_dim=15, out_dim=4, action=family.categorical(), batch=16,
                   batches={"test": 2, "dev": 1})
rng = np.random.default_rng(0)
params = {name: rng.normal(0, 1, (3, *shape)).astype(np.float32) for name, shape in spec.shapes([8]).items()}
params["obs_std"] = np.ones((3, 15), np.float32)
keys = rng.integers(0, 2**32, (3, 3, 2, 2), dtype=np.uint64).astype(np.uint32)
other = keys.copy()
other[:, :, 1] += 1  # other action keys, the same environment keys
out["maze"] = [spec.returns("tanh", params, k).tolist() for k in (keys, keys, other)]

rule, key = family.gaussian(-1.0, 1.0), jax.random.PRNGKey(0)
near = rule.sample(jnp.full((4000, 1), 0.3), {"log_std": jnp.array([-3.0])}, key)
far = rule.sample(jnp.full((4000, 1), 5.0), {"log_std": jnp.array([0.0])}, key)
out["near"], out["far"] = np.asarray(near).tolist(), np.asarray(far).tolist()
logits = jnp.tile(jnp.log(jnp.array([0.1, 0.2, 0.7])), (20000, 1))
out["categorical"] = np.asarray(family.categorical().sample(logits, {}, jax.random.PRNGKey(1))).tolist()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def rollouts() -> dict:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", ROLLOUTS], capture_output=True, text=True, timeout=600,
                          cwd=TASKS.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_rollouts_are_deterministic_and_the_action_keys_matter(rollouts):
    first, again, other_actions = (np.array(r) for r in rollouts["maze"])
    assert first.shape == (3, 3, 16) and np.array_equal(first, again)
    assert not np.array_equal(first, other_actions)
    assert set(np.unique(first)) <= {10.0 * k for k in range(21)}  # +10 per goal, 200 steps at most


def test_the_gaussian_rule_samples_around_the_mean_and_clips_to_the_action_space(rollouts):
    near, far = np.array(rollouts["near"]), np.array(rollouts["far"])
    assert near.shape == (4000,) and abs(near.mean() - 0.3) < 0.01 and 0.04 < near.std() < 0.06
    assert far.max() == 1.0 and far.min() >= -1.0 and (far == 1.0).mean() > 0.99


def test_the_categorical_rule_samples_from_softmax(rollouts):
    a = np.array(rollouts["categorical"])
    freq = np.bincount(a, minlength=3) / a.size
    assert np.allclose(freq, [0.1, 0.2, 0.7], atol=0.015)
