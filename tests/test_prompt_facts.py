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

from pytest_mlgym import export
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


# -- the llm harness's prompts, through litellm's provider mechanism ---------------------------------
def play(task, tmp_path, replies, env_steps=20, **params):
    """Run the llm agent on ``task`` with the scripted model; the record, the trajectory (the reset
    first) and what the model was sent."""
    from pytest_mlgym.agents import scripted  # imports litellm: never at collection
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"replies": replies}))
    spec = AgentSpec("scripted", "llm", {"model": f"mlgym-scripted/{script}", "tool_calling": True,
                                          "num_retries": 0, "name": "scripted", **params})
    agent = spec.make()
    ep = Episode.start(MLGymEnv(task, cache_dir=tmp_path / "cache", max_steps=env_steps), seed=0)
    try:
        rec = ep.run(agent, name="scripted")
    finally:
        ep.close()
    return rec, list(ep.env.state.trajectory), scripted.HANDLER.requests[agent.episode]


@pytest.mark.parametrize("tools", [True, False], ids=["tool-calls", "text-format"])
def test_each_turn_says_the_open_file_the_current_folder_and_no_output(tiny, tmp_path, tools):
    replies = [{"tool": "bash", "args": {"command": "mkdir sub && cd sub"}},
               {"tool": "open", "args": {"path": "../answer.txt"}}, {"tool": "bash", "args": {"command": "true"}},
               {"tool": "submit"}]
    rec, steps, requests = play(tiny, tmp_path, replies, tool_calling=tools)
    assert steps[1]["observation"] == steps[3]["observation"] == "(no output)"  # the env says so, for any agent
    workdir = steps[2]["observation"].split("[File: ", 1)[1].split("/answer.txt", 1)[0]
    moved = f"(Current directory: {workdir}/sub)"
    cd, opened, silent = (requests[n]["messages"][-1]["content"] for n in (1, 2, 3))
    assert cd.startswith("(no output)\n") and f"(Open file: n/a) {moved}" in cd
    assert f"(Open file: {workdir}/answer.txt) {moved}" in opened and f"(Open file: {workdir}/answer.txt) {moved}" in silent
    # export rebuilds the same turns from the saved trajectory
    rebuilt = [m["content"] for m in export.conversation(export.Run(rec, steps)) if m["role"] == "user"]
    assert f"(Open file: n/a) {moved}" in rebuilt[1] and f"(Open file: {workdir}/answer.txt) {moved}" in rebuilt[3]


@pytest.mark.parametrize("tools", [True, False], ids=["tool-calls", "text-format"])
def test_the_docs_match_the_calling_mode_and_every_schema_argument_is_described(tiny, tmp_path, tools):
    _, _, requests = play(tiny, tmp_path, [{"tool": "submit"}], tool_calling=tools)
    system = requests[0]["messages"][0]["content"]
    assert "edit <start>:<end>" in system and "validate" in system
    if not tools:  # the text format: block tools end with their end_of_ line; the rest is bash
        assert "ended by `end_of_edit`" in system and "<anything else>" in system and not requests[0]["schemas"]
        return
    assert "end_of_" not in system and "<anything else>" not in system  # no text syntax for a tool-calling model
    assert "bash <command>" in system and "`text` argument" in system
    schemas = requests[0]["schemas"]
    assert {s["function"]["name"] for s in schemas} >= {"open", "edit", "create", "insert", "search_dir", "bash"}
    for s in schemas:
        for arg, prop in s["function"]["parameters"]["properties"].items():
            assert prop.get("description", "").strip(), (s["function"]["name"], arg)


def test_the_first_message_and_the_counter_give_one_step_budget(tiny, tmp_path):
    looks = [{"tool": "bash", "args": {"command": "true"}}] * 2
    _, _, requests = play(tiny, tmp_path, [*looks, {"tool": "submit"}], env_steps=20, max_steps=8)
    task = requests[0]["messages"][1]["content"]
    assert "You have 8 steps" in task and "20 steps" not in task  # the agent's own budget binds
    assert "(step 2/8;" in requests[1]["messages"][-1]["content"]
    _, _, requests = play(tiny, tmp_path, [*looks, {"tool": "submit"}], env_steps=6, max_steps=8)
    assert "You have 6 steps" in requests[0]["messages"][1]["content"]  # the env's, when it binds
    assert "(step 2/6;" in requests[1]["messages"][-1]["content"]
