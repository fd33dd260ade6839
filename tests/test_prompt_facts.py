"""What a model needs to plan, in its prompt (issue 17, point 6): the sandbox's environment in the
first observation (probed inside the sandbox, not read from the host), the open file and the
working directory after each step, "(no output)" for a silent command, tool docs that match the
calling mode, argument descriptions in the tool schemas, and one step count. The llm agent is
driven through litellm's real call path by the ``mlgym-scripted`` provider (a ``litellm.CustomLLM``)."""
from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
import yaml

from pytest_mlgym import sandbox as sandboxes
from pytest_mlgym.agents import AgentSpec
from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.env import facts as env_facts
from pytest_mlgym.episode import Episode
from pytest_mlgym.observation import Intro, last
from pytest_mlgym.sandbox.local import LocalSandbox

FAKE_VERSION = "9.9.9"


class FakePythonSandbox(LocalSandbox):
    """A local sandbox whose Python also sees a package the host's cannot import (xgboost 9.9.9,
    on a PYTHONPATH inside the workspace), and that counts the commands it runs."""

    commands: list[str] = []

    @classmethod
    def open(cls, workdir: Path, config: sandboxes.SandboxConfig) -> "FakePythonSandbox":
        site = Path(workdir) / ".site"
        (site / "xgboost").mkdir(parents=True)
        (site / "xgboost" / "__init__.py").write_text("")
        info = site / f"xgboost-{FAKE_VERSION}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: xgboost\nVersion: {FAKE_VERSION}\n")
        (info / "top_level.txt").write_text("xgboost\n")
        import dataclasses
        return cls(workdir, dataclasses.replace(config, env={**config.env, "PYTHONPATH": str(site)}))

    def exec(self, cmd, timeout):
        FakePythonSandbox.commands.append(cmd)
        return super().exec(cmd, timeout)


@pytest.fixture
def fake_backend(monkeypatch):
    monkeypatch.setitem(sandboxes.BACKENDS, "fakepython", FakePythonSandbox)
    monkeypatch.setattr(FakePythonSandbox, "commands", [])
    for key in [k for k in env_facts._PROBED if k[0] == "fakepython"]:
        monkeypatch.delitem(env_facts._PROBED, key)
    return FakePythonSandbox


def facts_text(obs: str) -> str:
    intro = last(obs, Intro)
    return intro.task[intro.task.index("Environment (this sandbox):"):]


def test_the_first_observation_describes_the_sandbox_as_probed_inside_it(tiny, tmp_path, fake_backend):
    host = importlib.util.find_spec("xgboost")
    assert host is None or FAKE_VERSION not in str(host.origin)  # the host cannot import the sandbox's
    env = MLGymEnv(tiny, sandbox="fakepython", cache_dir=tmp_path / "cache", gpus=("3",), max_steps=5)
    try:
        first, _ = env.reset(seed=0)
        again, _ = env.reset(seed=0)
        workdir = env.sandbox.workdir
    finally:
        env.close()
    text = facts_text(first)
    assert f"xgboost {FAKE_VERSION}" in text and "numpy " in text  # the sandbox's packages, with versions
    assert "No network" in text and "`pip install` fail" in text  # tiny's limits: no network
    assert "Memory: 1024 MB" in text and "`free`" in text  # tiny's limits.memory_mb, not the host's memory
    assert "GPUs: 1" in text and re.search(r"CPU cores you may use: \d+", text)
    assert last(first, Intro).sandbox["packages"]["xgboost"] == FAKE_VERSION  # the same, typed
    # deterministic, probed once per backend, and no host path named
    assert again == first
    assert sum("MLGYM_FACTS" in c for c in fake_backend.commands) == 1
    assert "/" not in text and workdir not in first and str(tmp_path) not in first


def test_the_facts_follow_the_tasks_limits(tiny, tmp_path, fake_backend):
    task = tmp_path / "tasks" / "tiny"
    shutil.copytree(tiny.path, task)
    spec = yaml.safe_load((task / "task.yaml").read_text())
    spec["limits"].update(memory_mb=3000, network=True, cpus=1.5)
    (task / "task.yaml").write_text(yaml.safe_dump(spec))
    from pytest_mlgym.task import load_task
    env = MLGymEnv(load_task(task), sandbox="fakepython", cache_dir=tmp_path / "cache", max_steps=5)
    try:
        text = facts_text(env.reset(seed=0)[0])
    finally:
        env.close()
    assert "Memory: 3000 MB" in text and "CPU cores you may use: 1.5." in text and "No GPU" in text
    assert "network is reachable" in text and "pip install" not in text
