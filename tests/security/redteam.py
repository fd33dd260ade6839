"""The red-team arena (fixtures for test_attacks.py; not a conftest.py, which would shadow the
``conftest`` module other tests import): a real episode of a task on every sandbox backend, played by a scripted
adversarial agent (the ``replay`` policy), with everything outside the workspace fingerprinted.

The arena lives under /var/tmp (not /tmp: a private /tmp would hide it for free, and masking
the task folders is what is under test). Its tasks are copies of the tiny test task, with a
fresh random secret target, and of the tasks whose evaluators call agent code (the three games and
sat_heuristic).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from pytest_mlgym.agents import AgentSpec
from pytest_mlgym.sandbox import SandboxError, cgroup, isolation

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tasks" / "tiny"
PD = ROOT / "tasks" / "prisoners_dilemma"
CALLS_AGENT_CODE = ("prisoners_dilemma", "battle_of_sexes", "blotto", "sat_heuristic")  # their evaluators call it

# what each way of running gives; the docker backend must give every one
GIVES = {
    "hidden": {"bwrap", "docker"},
    "allow_list": {"bwrap", "docker"},  # the filesystem is what was allowed, not the host minus masks
    "readonly_host": {"bwrap", "docker"},
    "network": {"bwrap", "unshare", "docker"},
    "pid_isolation": {"bwrap", "docker"},
    "private_tmp": {"bwrap", "docker"},
    "kill_all": {"bwrap", "docker"},  # + any local mode with a control group
    "pids": {"docker"},  # + any local mode with a control group
    "memory_total": {"docker"},  # + any local mode with a control group
}
BY_CGROUP = {"kill_all", "pids", "memory_total"}
CANNOT = {
    "hidden": "only bwrap (or docker) masks host paths: the host filesystem is visible",
    "allow_list": "only bwrap (or docker) builds the filesystem from an allow-list: the host filesystem is visible",
    "readonly_host": "only bwrap (or docker) makes the host read-only: the shell writes as the harness's user",
    "network": "no isolation: the sandbox shares the host's network",
    "pid_isolation": "no PID namespace: the sandbox sees and can signal the harness's processes (same user)",
    "private_tmp": "no private /tmp: the sandbox writes the host's /tmp, which no quota covers",
    "kill_all": "no PID namespace and no control group: a double-forked, setsid daemon escapes the kill",
    "pids": "no control group (needs root and writable cgroups): nothing caps the sandbox's processes",
    "memory_total": "no control group: RLIMIT_AS caps each process, not all of them together",
}
MODES = ("bwrap", "unshare", "none")


@functools.cache
def _mode_works(mode: str) -> str | None:
    if mode == "bwrap" and not (shutil.which("bwrap") and isolation._works(["bwrap", *isolation._PROBE])):
        return "bubblewrap is missing or cannot make namespaces here (apt-get install bubblewrap; run as root)"
    if mode == "unshare" and not (shutil.which("unshare") and isolation._works(["unshare", "-n", "true"])):
        return "`unshare -n` does not work here (needs root)"
    return None


@dataclass
class Backend:
    id: str  # local-bwrap, local-unshare, local-none, docker
    name: str  # the sandbox backend
    mode: str  # the isolation it records

    def gives(self, guarantee: str) -> bool:
        if guarantee in BY_CGROUP and self.name == "local" and cgroup.available():
            return True
        return self.mode in GIVES[guarantee]

    def require(self, *guarantees: str) -> None:
        """Report, as an explicit xfail with the reason, an attack this backend cannot contain. It is
        not run: uncontained, some of them would harm the host (kill the harness, exhaust memory)."""
        for g in guarantees:
            if not self.gives(g):
                pytest.xfail(f"{self.id} cannot contain this: {CANNOT[g]}")


@pytest.fixture(params=[pytest.param(("local", m), id=f"local-{m}") for m in MODES]
                + [pytest.param(("docker", "docker"), id="docker", marks=pytest.mark.docker)])
def backend(request, monkeypatch) -> Backend:
    name, mode = request.param
    if name == "docker":
        from pytest_mlgym.sandbox import docker
        try:
            docker.check()
        except SandboxError as e:
            pytest.skip(f"docker backend unavailable: {e} (start an engine: bash docker/start-engine)")
    else:
        if why := _mode_works(mode):
            pytest.skip(f"isolation mode {mode} unavailable: {why}")
        monkeypatch.setenv("MLGYM_ISOLATION", mode)
        isolation.available.cache_clear()
        request.addfinalizer(isolation.available.cache_clear)
    b = Backend(f"{name}-{mode}" if name == "local" else name, name, mode)
    others = [str(v) for k, v in request.node.callspec.params.items() if k != "backend"]
    attack = request.node.originalname.removeprefix("test_") + (f"[{','.join(others)}]" if others else "")
    request.node.user_properties += [("attack", attack), ("backend", b.id)]  # counted at the end of the run
    return b


# -- the arena ---------------------------------------------------------------------------------------
@dataclass
class Arena:
    root: Path
    tasks: Path  # hidden from the agent: task folders with their evaluators and answers
    outside: Path  # an ordinary host folder outside the workspace, not hidden: it must not change
    reports: Path
    cache: Path
    secret: str  # the tiny task's hidden target
    api_key: str  # a secret in the harness's environment
    token: str  # in the command line of every process an attack starts
    server: "Listener"
    harness_pid: int = field(default_factory=os.getpid)

    @property
    def tiny(self) -> Path:
        return self.tasks / "tiny"

    @property
    def pd(self) -> Path:
        return self.tasks / "prisoners_dilemma"

    def evaluator_secrets(self) -> list[str]:
        """The games' private/secret files (their opponents' streams come from them)."""
        return [p.read_text().strip() for p in sorted(self.tasks.glob("*/private/secret"))]

    def fingerprint(self) -> dict[str, str]:
        """Every path outside the workspaces, with a hash of its content (and mode)."""
        out = {}
        for base in (self.tasks, self.outside, self.cache):
            for p in sorted(base.rglob("*")):
                if p.is_file() and not p.is_symlink():
                    out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
                else:
                    out[str(p)] = "link" if p.is_symlink() else "dir"
        return out


class Listener:
    """A TCP server on the host's loopback that counts the connections it gets."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def arena(monkeypatch, tmp_path_factory):
    root = Path(tempfile.mkdtemp(prefix="mlgym-redteam-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None))
    tasks = root / "tasks"
    shutil.copytree(TINY, tasks / "tiny")
    for name in CALLS_AGENT_CODE:
        shutil.copytree(ROOT / "tasks" / name, tasks / name, ignore=shutil.ignore_patterns("__pycache__"))
    secret = f"{random.randrange(1000, 9999)}.{random.randrange(10**5, 10**6)}"
    (tasks / "tiny" / "private" / "target.txt").write_text(secret)
    spec = yaml.safe_load((tasks / "tiny" / "task.yaml").read_text())
    spec["limits"] = {"step_s": 6, "episode_s": 300, "evaluation_s": 20, "memory_mb": 1024,
                      "file_size_mb": 100, "disk_mb": 300, "pids": 128, "output_chars": 4000}
    (tasks / "tiny" / "task.yaml").write_text(yaml.safe_dump(spec))
    outside = root / "outside"
    outside.mkdir()
    (outside / "canary.txt").write_text("untouched\n")
    (root / "cache").mkdir()
    api_key = f"sk-redteam-{random.randrange(10**12, 10**13)}"
    monkeypatch.setenv("MLGYM_REDTEAM_API_KEY", api_key)
    monkeypatch.chdir(root)  # like a real run: the harness's working folder holds the tasks
    server = Listener()
    a = Arena(root, tasks, outside, root / "reports", root / "cache", secret, api_key,
              f"1000.{random.randrange(10**8, 10**9)}", server)
    yield a
    server.close()
    for pid in procs_with(a.token):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(root, ignore_errors=True)


def procs_with(token: str) -> list[int]:
    """Live host processes whose command line holds ``token``."""
    found = []
    for e in os.listdir("/proc"):
        if not e.isdigit() or int(e) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{e}/cmdline").read_bytes()
            state = Path(f"/proc/{e}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if token.encode() in cmd and state != b"Z":
            found.append(int(e))
    return found


# -- playing an attack ----------------------------------------------------------------------------------
@dataclass
class Outcome:
    record: object  # the RunRecord
    steps: list[dict]  # the trajectory after reset: action, observation
    changed: dict[str, tuple]  # path -> (before, after) for everything outside the workspace that changed
    left: list[int]  # processes with the token still running after the episode

    @property
    def observations(self) -> str:
        return "\n".join(s["observation"] for s in self.steps)

    def obs(self, i: int) -> str:
        return self.steps[i]["observation"]


@pytest.fixture
def attack(arena, backend, tmp_path, request):
    """``attack(actions, task="tiny")`` plays the actions as an agent in a fresh episode on this
    backend and returns the Outcome, after the checks every attack must pass: the episode ended
    with a recorded status, nothing outside the workspace changed, no secret reached the agent,
    nothing it started is still running, and the harness goes on."""
    from pytest_mlgym.env import MLGymEnv
    from pytest_mlgym.episode import Episode
    from pytest_mlgym.task import load_task

    def play(actions: list[str], task: str = "tiny", max_steps: int = 30) -> Outcome:
        path = tmp_path / "attack.jsonl"
        path.write_text("".join(json.dumps({"action": a}) + "\n" for a in actions))
        load_task(arena.tasks / task).prepare("lite", arena.cache)  # its data first: the cache must not change after
        before = arena.fingerprint()
        env = MLGymEnv(load_task(arena.tasks / task), sandbox=backend.name, max_steps=max_steps,
                       cache_dir=arena.cache, hidden=(arena.tasks, arena.reports))
        episode = Episode.start(env, seed=0)
        try:
            record = episode.run(AgentSpec("redteam", "replay", {"trajectory": str(path)}))
        finally:
            episode.close()
        after = arena.fingerprint()
        changed = {p: (before.get(p), after.get(p)) for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        out = Outcome(record, env.state.trajectory[1:], changed, gone(arena.token))
        assert record.status in ("submitted", "invalid", "step_limit", "time_limit", "error"), record
        assert record.status == "submitted" or record.reason, f"no reason recorded for {record.status}"
        assert not out.changed, f"the attack changed files outside the workspace: {sorted(out.changed)}"
        for secret in (arena.secret, arena.api_key, *arena.evaluator_secrets()):
            assert secret not in out.observations, f"a secret reached the agent: {secret}"
        assert 10.0 not in [s.score for s in record.scores], "the hidden target was guessed exactly"
        assert out.left == [], f"processes outlived the episode: {out.left}"
        return out

    return play


def gone(token: str, within: float = 3.0) -> list[int]:
    import time
    end = time.monotonic() + within
    while (left := procs_with(token)) and time.monotonic() < end:
        time.sleep(0.05)
    return left


def site_packages() -> str:
    import sysconfig
    return sysconfig.get_paths()["purelib"]


def python() -> str:
    return sys.executable
