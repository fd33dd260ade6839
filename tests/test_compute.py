"""Compute metadata: every run record says on what hardware its sandbox ran and what it used, measured
by the harness (a daemonised child's CPU too), and comparing different hardware is never silent."""
from __future__ import annotations

import os
import time

import pytest

from pytest_mlgym import compute
from pytest_mlgym.compute import Compute, hardware_note, parse_cpuinfo
from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.episode import Episode
from pytest_mlgym.results import RunRecord
from pytest_mlgym.sandbox import SandboxConfig, cgroup
from pytest_mlgym.sandbox.local import LocalSandbox
from test_docker import engine, tcp_engine  # noqa: F401 (fixtures: a real engine, one reached over tcp)

CORES = os.cpu_count() or 1
BURN = "python3 -c 'import time\nwhile time.process_time() < 1.0: pass'"  # ~1 CPU-second, whatever the load
# a child that leaves the shell's process group and session (double fork + setsid), burns, then says so
DAEMON = ("setsid sh -c \"(python3 -c 'import time\nwhile time.process_time() < 1.0: pass\nopen(\\\"done\\\", \\\"w\\\")' "
          "</dev/null >/dev/null 2>&1 &)\" &")
# the same in bash alone (an image without Python): it reads its own CPU ticks (user + system, 100 a second) from /proc
SH_DAEMON = ("setsid bash -c '(bash -c \"while read -r -a s < /proc/\\$BASHPID/stat; "
             "[ \\$((s[13] + s[14])) -lt 100 ]; do :; done; : > done\" "
             "</dev/null >/dev/null 2>&1 &)' &")
WAIT = "for i in $(seq 600); do [ -e done ] && break; sleep 0.1; done; ls done"


class Actions:
    """An agent that plays a fixed list of actions."""

    def __init__(self, *actions: str):
        self.actions = list(actions)

    def reset(self, task) -> None:
        pass

    def act(self, observation: str) -> str:
        return self.actions.pop(0) if self.actions else "submit"


def sandbox(tmp_path, **config) -> LocalSandbox:
    ws = tmp_path / "ws"
    ws.mkdir()
    return LocalSandbox(ws, SandboxConfig(**config))


def used(sb: LocalSandbox) -> float:
    res = sb.cpu_usage()
    assert res is not None
    return res[0]


def test_a_run_record_carries_its_compute(tiny, tmp_path):
    env = MLGymEnv(tiny, max_steps=6, cache_dir=tmp_path)
    ep = Episode.start(env, seed=0)
    t0 = time.monotonic()
    try:
        rec = ep.run(Actions(BURN, "echo 7 > answer.txt", "submit"), name="burner")
    finally:
        ep.close()
    wall = time.monotonic() - t0
    c = rec.compute
    assert c.cpu_model == compute.this_machine().cpu_model and c.logical_cores == CORES
    assert c.physical_cores is not None and 1 <= c.physical_cores <= CORES
    assert c.gpu_count == 0 and c.gpu_model is None and c.gpu_seconds == 0 and c.gpu_seconds_source is None
    assert c.core_seconds is not None and 0.5 <= c.core_seconds <= wall * CORES + 1.0
    assert c.core_seconds_source == ("cgroup" if cgroup.available() else "process-tree")
    assert c.wall_s == rec.wall_s
    back = RunRecord.model_validate_json(rec.model_dump_json())  # it survives the store
    assert back.compute == c and back.compute.hardware == c.hardware


def test_records_written_before_compute_existed_still_read(tiny, tmp_path):
    env = MLGymEnv(tiny, max_steps=2, cache_dir=tmp_path)
    ep = Episode.start(env, seed=0)
    try:
        rec = ep.run(Actions("submit"), name="a")
    finally:
        ep.close()
    old = rec.model_dump(exclude={"compute"})
    back = RunRecord.model_validate(old)
    assert back.compute == Compute() and back.compute.hardware is None


def test_a_command_that_burns_a_cpu_second_counts_about_one(tmp_path):
    sb = sandbox(tmp_path)
    try:
        before, t0 = used(sb), time.monotonic()
        assert sb.exec(BURN, timeout=120).returncode == 0
        spent = used(sb) - before
        assert 0.5 <= spent <= (time.monotonic() - t0) * CORES + 0.5
    finally:
        sb.close()


def without_cpu_counting(monkeypatch, how: str) -> None:
    """As on a machine where no group can be made ("none"), or one without a CPU counter ("no-cpuacct")."""
    if how == "none":
        monkeypatch.setattr(cgroup.Group, "create", classmethod(lambda cls, pids, memory_mb: None))
    elif how == "no-cpuacct":
        monkeypatch.setattr(cgroup.Group, "cpu_seconds", lambda self: None)


@pytest.mark.parametrize("how", ["cgroup", "none", "no-cpuacct"])
def test_a_daemonised_child_is_counted(tmp_path, monkeypatch, how):
    grouped = how == "cgroup"
    if how != "none" and not cgroup.available():
        pytest.skip("no control group can be made here (needs root and cgroup v1 or v2)")
    without_cpu_counting(monkeypatch, how)
    sb = sandbox(tmp_path)
    try:
        if not grouped and sb.isolation != "bwrap":
            pytest.skip("without a PID namespace (bubblewrap) a reparented daemon is not counted (compute.py)")
        before = used(sb)
        t0 = time.monotonic()
        assert sb.exec(DAEMON, timeout=30).returncode == 0  # returns at once: the daemon burns on its own
        assert sb.exec(WAIT, timeout=120).output.strip().endswith("done")
        spent = used(sb) - before
        assert 0.5 <= spent <= (time.monotonic() - t0) * CORES + 0.5
        assert sb.cpu_usage()[1] == ("cgroup" if grouped else "process-tree")
    finally:
        sb.close()


@pytest.mark.parametrize("how", ["cgroup", "none", "no-cpuacct"])
def test_a_timed_out_command_still_counts(tmp_path, monkeypatch, how):
    """The shell and everything in it is killed at a timeout: what it burnt stays counted (the group
    keeps its total; without a counter, the tree is sampled before the kill)."""
    if how != "none" and not cgroup.available():
        pytest.skip("no control group can be made here (needs root and cgroup v1 or v2)")
    without_cpu_counting(monkeypatch, how)
    sb = sandbox(tmp_path)
    try:
        before = used(sb)
        res = sb.exec("python3 -c 'import time\nwhile time.process_time() < 1.0: pass\ntime.sleep(60)'", timeout=8)
        if not res.timed_out:
            pytest.skip("the machine is too loaded to burn a CPU-second in 8 s")
        assert used(sb) - before >= 0.5
    finally:
        sb.close()


CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480C
physical id\t: 0
core id\t\t: 0

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480C
physical id\t: 0
core id\t\t: 0

processor\t: 2
model name\t: Intel(R) Xeon(R) Platinum 8480C
physical id\t: 0
core id\t\t: 1
"""


def test_cpuinfo_gives_model_and_cores():
    m = parse_cpuinfo(CPUINFO)
    assert (m.cpu_model, m.logical_cores, m.physical_cores) == ("Intel(R) Xeon(R) Platinum 8480C", 3, 2)
    assert parse_cpuinfo("").cpu_model is None


def hw(cpu: str, cores: int = 8, gpus: int = 0, gpu: str | None = None) -> Compute:
    return Compute(cpu_model=cpu, logical_cores=cores, physical_cores=cores, gpu_count=gpus, gpu_model=gpu)


def test_comparing_different_hardware_gives_a_note():
    intel, amd = hw("Intel Xeon"), hw("AMD EPYC")
    assert hardware_note([intel, intel], [intel]) is None
    note = hardware_note([intel], [amd])
    assert note and "different hardware" in note and "Intel Xeon x8" in note and "AMD EPYC x8" in note
    assert hardware_note([hw("AMD EPYC", 8)], [hw("AMD EPYC", 16)])  # cores differ
    gpu = hardware_note([hw("AMD EPYC", gpus=1, gpu="NVIDIA H100")], [hw("AMD EPYC", gpus=1, gpu="NVIDIA A100")])
    assert gpu and "1 x NVIDIA H100" in gpu
    assert hardware_note([intel, amd], [intel, amd])  # each side mixes two machines
    unknown = hardware_note([intel], [Compute()])
    assert unknown and "not recorded for the stored run" in unknown
    assert hardware_note([Compute()], [Compute()]) is None  # neither side says: nothing to compare


@pytest.mark.docker
def test_a_docker_sandbox_counts_its_container_cpu(tmp_path):
    from pytest_mlgym.sandbox import SandboxError, docker
    try:
        docker.check()
    except SandboxError as e:
        pytest.skip(f"no Docker Engine here (bash docker/start-engine): {e}")
    ws = tmp_path / "ws"
    ws.mkdir()
    sb = docker.DockerSandbox(ws, SandboxConfig())
    try:
        assert sb.machine() == compute.this_machine()  # an engine on this machine: this machine's CPU
        before, t0 = used(sb), time.monotonic()
        assert sb.exec(SH_DAEMON, timeout=30).returncode == 0
        assert sb.exec(WAIT, timeout=120).output.strip().endswith("done")
        spent = used(sb) - before
        assert 0.5 <= spent <= (time.monotonic() - t0) * CORES + 0.5
        assert sb.cpu_usage()[1] == "cgroup"
    finally:
        sb.close()
    assert sb.cpu_usage() is None  # closed: nothing left to read


def test_compare_notes_different_hardware():
    from test_report_cost import run

    from pytest_mlgym.report import gates, terminal
    intel = [run("a", s, 2.0) for s in range(2)]
    amd = [r.model_copy(update={"compute": hw("AMD EPYC", 4), "session": "now"}) for r in intel]
    notes = gates.compare(intel, amd)["notes"]
    (note,) = [n for n in notes if "hardware" in n]
    assert "this run on AMD EPYC x4" in note and "the stored run on X x4" in note
    assert not [n for n in gates.compare(intel, [r.model_copy(update={"session": "now"}) for r in intel])["notes"]
                if "hardware" in n]
    old = [r.model_copy(update={"compute": Compute()}) for r in intel]  # stored before compute metadata
    assert any("hardware not recorded for the stored run" in n for n in gates.compare(old, amd)["notes"])
    c = {**gates.compare(intel, amd), "stored": "old.jsonl", "stored_session": "s", "stored_runs": 2}
    assert f"note: {note}" in terminal.comparison_lines(c)  # what --mlgym-compare prints


@pytest.mark.docker
def test_a_remote_engine_reports_its_host_and_its_stats(tiny, tcp_engine, tmp_path, monkeypatch):
    """An engine reached over tcp:// (a remote one to the harness): its host's CPU comes from the
    engine (docker info and the container's kernel), its CPU time from the engine's stats API."""
    from pytest_mlgym.sandbox import DockerOptions
    from pytest_mlgym.sandbox.docker import container, remote

    monkeypatch.setattr(container, "CPU_FILES", ())  # as where the engine's host is another machine
    monkeypatch.setattr(remote, "_MACHINES", {})
    env = MLGymEnv(tiny, sandbox="docker", max_steps=6, cache_dir=tmp_path / "cache",
                   sandbox_config=SandboxConfig(docker=DockerOptions(hosts=(tcp_engine,))))
    ep = Episode.start(env, seed=0)
    try:
        assert not env.sandbox.files_local
        rec = ep.run(Actions(SH_DAEMON, WAIT, "echo 7 > answer.txt", "submit"), name="remote")
    finally:
        ep.close()
    c = rec.compute
    here = compute.this_machine()  # the tcp engine runs on this machine: the same CPU, found the engine's way
    assert (c.cpu_model, c.logical_cores) == (here.cpu_model, here.logical_cores)
    assert c.core_seconds_source == "cgroup" and c.core_seconds is not None
    assert 0.5 <= c.core_seconds <= c.wall_s * CORES + 1.0
