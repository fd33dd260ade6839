"""The docker backend beyond the shared contract: limits it reports, cleanup, and whole runs."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pytest_mlgym.sandbox import SandboxConfig, SandboxError

pytestmark = pytest.mark.docker
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def engine():
    from pytest_mlgym.sandbox import docker
    try:
        docker.check()
    except SandboxError as e:
        pytest.skip(f"no Docker Engine here: {e}")
    return docker._client()


@pytest.fixture
def make(engine, tmp_path):
    from pytest_mlgym.sandbox.docker import DockerSandbox
    made = []

    def make(**config):
        ws = tmp_path / f"ws{len(made)}"
        ws.mkdir()
        sb = DockerSandbox(ws, SandboxConfig(**config))
        made.append(sb)
        return sb
    yield make
    for sb in made:
        sb.close()


def containers(engine, **labels) -> list:
    return engine.containers.list(all=True, filters={"label": [f"{k}={v}" for k, v in labels.items()]})


def test_a_memory_bomb_is_killed_by_the_limit_and_said_to_be(make):
    sb = make(memory_mb=256)
    res = sb.exec("python -c 'b = bytearray(2 << 30)'", 60)
    assert res.returncode != 0 and "[out of memory: a process reached the container's limit of 256 MB" in res.output
    assert sb.exec("echo alive", 10).output == "alive\n"  # the harness and the shell go on


def test_a_fork_bomb_hits_the_pids_limit_and_the_harness_survives(make):
    sb = make(pids=64)
    sb.exec("bomb() { bomb | bomb & }; bomb", 8)  # returns at once: the bomb goes on in the background
    time.sleep(2)
    cgroup = Path(f"/sys/fs/cgroup/pids/docker/{sb.container.id}/cgroup.procs")
    if cgroup.exists():
        assert len(cgroup.read_text().split()) <= 64  # the limit holds
    assert "alive" in sb.exec("echo alive", 20).output.splitlines()  # a builtin: the shell still answers
    assert sb.exec("sleep 100", 2).timed_out  # a timeout kills everything in the container but its init
    assert int(sb.exec("ls /proc | grep -c '^[0-9]'", 10).output.strip()) < 10


def test_the_container_is_locked_down(make):
    sb = make()
    out = sb.exec("id -u; cat /proc/self/status | grep CapEff; touch /etc/x 2>&1; ls /work 2>&1; "
                  "python -c \"import urllib.request as u; u.urlopen('http://1.1.1.1', timeout=3)\" 2>&1 | tail -1", 30)
    lines = out.output.splitlines()
    assert lines[0] == "65534" and lines[1].endswith("0000000000000000")  # not root, no capabilities
    assert "Read-only file system" in out.output and "No such file or directory" in out.output
    assert "Network is unreachable" in out.output or "URLError" in out.output


def test_files_made_in_the_container_are_readable_by_the_harness(make):
    sb = make()
    sb.exec("mkdir -p out && echo 1,2 > out/sub.csv", 10)
    assert sb.read_file("out/sub.csv") == b"1,2\n"
    sb.write_file("notes.txt", b"from the harness")
    assert sb.exec("cat notes.txt && echo more >> notes.txt", 10).returncode == 0


def test_close_removes_the_container(make, engine):
    sb = make()
    cid = sb.container.id
    sb.close()
    assert not [c for c in engine.containers.list(all=True) if c.id == cid]


def test_cleanup_removes_leftovers_of_dead_sessions_only(engine, tmp_path, monkeypatch):
    from pytest_mlgym.sandbox import docker
    dead = subprocess.Popen(["true"])
    dead.wait()
    for owner, sid in ((str(dead.pid), "crashed-session"), (str(os.getpid()), "live-session")):
        monkeypatch.setenv("MLGYM_SESSION_OWNER", owner)
        monkeypatch.setenv("MLGYM_SESSION_ID", sid)
        ws = tmp_path / sid
        ws.mkdir()
        docker.DockerSandbox(ws, SandboxConfig())._proc.kill()  # abandoned without close()
    try:
        out = subprocess.run([sys.executable, "-m", "pytest", "--mlgym-cleanup", "-p", "no:cacheprovider"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert out.returncode == 0 and re.search(r"mlgym: removed [1-9]\d* containers? left by crashed sessions",
                                                 out.stdout), out.stdout + out.stderr
        assert containers(engine, **{docker.LABEL: "crashed-session"}) == []
        assert len(containers(engine, **{docker.LABEL: "live-session"})) == 1
    finally:
        docker.cleanup("live-session")


def test_a_run_in_docker_passes_and_leaves_no_container(bench, engine):
    from pytest_mlgym.sandbox import docker
    # a conftest that abandons a container, as a crashing test would: the session must still remove it
    (bench.path / "conftest.py").write_text(
        "import pytest\n"
        "@pytest.fixture(autouse=True)\n"
        "def abandoned(tmp_path):\n"
        "    from pytest_mlgym.sandbox import SandboxConfig\n"
        "    from pytest_mlgym.sandbox.docker import DockerSandbox\n"
        "    DockerSandbox(tmp_path, SandboxConfig())\n")
    result = bench.runpytest_subprocess("tasks", "--sandbox=docker", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)  # the baseline agent reproduces the tiny task's baseline
    [rec] = [json.loads(line) for line in (bench.path / "reports" / "results.jsonl").read_text().splitlines()]
    assert rec["isolation"] == "docker" and rec["best_submission"] == 6.0 and rec["sandbox"] == "docker"
    # the abandoned containers (one per worker) and the episode's are all gone with the session
    assert engine.containers.list(all=True, filters={"label": f"{docker.LABEL}={rec['session']}"}) == []


def test_two_lite_tasks_pass_in_docker(pytester, engine, monkeypatch, tmp_path):
    root = Path(__file__).resolve().parent.parent
    result = pytester.runpytest_subprocess(str(root / "tasks"), "--sandbox=docker", "-n", "2", "-k",
                                           "prisoners or house", f"--rootdir={root}", "-p", "no:cacheprovider",
                                           f"--mlgym-report-dir={tmp_path}")
    result.assert_outcomes(passed=2)


def test_without_an_engine_the_session_stops_in_one_line(bench, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = bench.runpytest_subprocess("--sandbox=docker", "-p", "no:cacheprovider")
    assert result.ret == 4
    (line,) = [line for line in result.errlines if line.strip()]
    assert line.startswith("ERROR: --sandbox docker: no Docker Engine answers at unix:///nonexistent/docker.sock "
                           "(DockerException: Error while fetching server API version: ") and line.endswith(
        "No such file or directory'))); start one (bash docker/start-engine) or set DOCKER_HOST")


def _dockerd(url: str | None, what: str):
    """Start another real dockerd (its own socket, data and exec roots), answering at ``url`` (or at
    its unix socket); yield the URL; stop it and remove its files afterwards."""
    if not shutil.which("dockerd") or os.geteuid() != 0:
        pytest.skip(f"needs root and dockerd to start {what}")
    d = Path(tempfile.mkdtemp(prefix="mlgym-dockerd-", dir="/tmp"))
    sock = f"unix://{d}/docker.sock"
    url = url or sock
    proc = subprocess.Popen(["dockerd", *(["--host", url] if url != sock else []), "--host", sock, "--data-root",
                             f"{d}/root", "--exec-root", f"{d}/exec", "--pidfile", f"{d}/docker.pid",
                             "--bridge=none", "--iptables=false"], stdout=subprocess.DEVNULL,
                            stderr=open(d / "log", "wb"))
    deadline = time.monotonic() + 30
    while subprocess.run(["docker", "-H", url, "info"], capture_output=True).returncode != 0:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.skip(f"{what} did not start (see {d}/log)")
        time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(30)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def second_engine(engine):
    """A second, real dockerd on its own unix socket."""
    yield from _dockerd(None, "a second dockerd")


@pytest.fixture
def third_engine(engine):
    """A third, real dockerd, private to one test: no other test's containers make it look busy."""
    yield from _dockerd(None, "a third dockerd")


def test_episodes_spread_over_two_engines(bench, second_engine, third_engine):
    # two engines no other test uses: the default one is busy with other tests' containers (-n 2),
    # and the scheduler rightly sends every episode away from a busy engine
    first = third_engine
    result = bench.runpytest_subprocess("tasks", "--sandbox=docker", f"--docker-host={first}",
                                        f"--docker-host={second_engine}", "--seeds=4", "-n", "2",
                                        "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    runs = [json.loads(line) for line in (bench.path / "reports" / "results.jsonl").read_text().splitlines()]
    assert {r["sandbox_host"] for r in runs} == {first, second_engine}
    from pytest_mlgym.sandbox import docker
    for url in (first, second_engine):  # nothing left on either engine
        assert docker._client(url).containers.list(all=True, filters={"label": f"{docker.LABEL}={runs[0]['session']}"}) == []


def test_gpus_are_requested_from_the_engine(make, engine):
    if "nvidia" not in (engine.info().get("Runtimes") or {}):
        from pytest_mlgym.sandbox import docker
        before = {c.id for c in engine.containers.list(all=True)}
        with pytest.raises(SandboxError, match=r"cannot start a container: .*device driver") as e:
            make(gpus=("0",))
        assert "\n" not in str(e.value)
        mine = {c.id for c in engine.containers.list(all=True, filters={"label": docker.LABEL})
                if c.labels.get(docker.OWNER) == docker.labels()[docker.OWNER]}
        assert not (mine - before)  # the container that could not start was removed
        return
    sb = make(gpus=("0",))  # a GPU machine with the NVIDIA runtime: the container sees exactly GPU 0
    assert sb.exec("nvidia-smi -L | wc -l", 30).output.strip() == "1"


def test_the_evaluator_runs_in_a_container_of_its_own(engine, tmp_path):
    from pytest_mlgym.env import MLGymEnv
    from pytest_mlgym.task import load_task

    task_dir = tmp_path / "tasks" / "tiny"
    shutil.copytree(DATA / "tasks" / "tiny", task_dir)
    evaluator = task_dir / "private" / "evaluate.py"
    code = evaluator.read_text()
    line = 'return {split: {"score": 10 - abs(guess - target)} for split in ("dev", "test")}'
    assert line in code
    evaluator.write_text(code.replace(line, 'return {split: {"score": 10 - abs(guess - target), "cgroup": '
                                            'open("/proc/self/cgroup").read(), "uid": __import__("os").getuid()} '
                                            'for split in ("dev", "test")}'))
    env = MLGymEnv(load_task(task_dir), sandbox="docker", cache_dir=tmp_path / "cache")
    env.reset(seed=0)
    try:
        agent = env.sandbox.container.id
        env.step("validate")
        metrics = env.state.scores[-1].metrics
    finally:
        env.close()
    assert env.state.scores[-1].score == 6.0
    assert "docker" in metrics["cgroup"] and agent not in metrics["cgroup"] and metrics["uid"] == 65534
    # its own container (named in its cgroup; other workers' evaluators of this session may run now)
    import docker as docker_sdk

    [evaluator] = set(re.findall(r"[0-9a-f]{64}", metrics["cgroup"]))
    with pytest.raises(docker_sdk.errors.NotFound):
        engine.containers.get(evaluator)  # removed after scoring


def test_a_custom_image_that_is_not_there_stops_the_session_in_one_line(bench, engine):
    result = bench.runpytest_subprocess("--sandbox=docker", "--docker-image=mlgym-nope:none", "-p", "no:cacheprovider")
    assert result.ret == 4
    [line] = [line for line in result.errlines if line.strip()]
    assert line.startswith("ERROR: --sandbox docker: the image mlgym-nope:none is not on the engine at ")
    assert "docker build -t mlgym-nope:none -f docker/Dockerfile ." in line


def test_ctrl_c_mid_episode_leaves_no_container(bench, engine, tmp_path):
    import signal as sig
    from pytest_mlgym.sandbox import docker

    (tmp_path / "slow.jsonl").write_text(json.dumps({"action": "sleep 120"}) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "tasks", "--sandbox=docker", f"--agent=replay:{tmp_path / 'slow.jsonl'}",
                             "-p", "no:cacheprovider"], cwd=bench.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    session = None
    deadline = time.monotonic() + 60
    while session is None and time.monotonic() < deadline:  # wait for the episode's container
        for c in engine.containers.list(filters={"label": docker.LABEL}):
            if c.labels.get(docker.OWNER, "").endswith(f":{proc.pid}"):
                session = c.labels[docker.LABEL]
        time.sleep(0.2)
    assert session, "the episode's container never appeared"
    time.sleep(1)
    os.killpg(proc.pid, sig.SIGINT)
    out = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert proc.returncode == 2 and "KeyboardInterrupt" in out, out[-2000:]
    assert engine.containers.list(all=True, filters={"label": f"{docker.LABEL}={session}"}) == []


@pytest.fixture(scope="module")
def tcp_engine(engine):
    """A real dockerd reached over tcp:// (on loopback): to the harness, a remote engine that cannot
    see this machine's files, so workspaces are copied in and out."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield from _dockerd(f"tcp://127.0.0.1:{port}", "a tcp dockerd")


def test_a_remote_engine_gets_a_copy_of_the_workspace(tiny, tcp_engine, tmp_path, monkeypatch):
    from pytest_mlgym.env import MLGymEnv

    from pytest_mlgym.sandbox import DockerOptions

    env = MLGymEnv(tiny, sandbox="docker", cache_dir=tmp_path / "cache",
                   sandbox_config=SandboxConfig(docker=DockerOptions(hosts=(tcp_engine,))))
    env.reset(seed=0)
    try:
        sb = env.sandbox
        assert not sb.files_local and sb.workdir == "/workspace" and sb.host == tcp_engine
        host_copy = Path(env._tmp) / "workspace" / "answer.txt"
        assert env.step("cat answer.txt; id -u")[0].split() == ["3", "65534"]
        env.step("echo 7 > answer.txt && ln -s /etc/passwd leak")
        assert host_copy.read_text() == "3\n"  # the engine works on its own copy
        assert "Edited" in env.step("open answer.txt")[0] + env.step("edit 1:1\n8\nend_of_edit")[0]
        assert sb.read_file("answer.txt") == b"8\n"
        with pytest.raises(SandboxError, match="outside the workspace"):
            sb.read_file("leak")
        obs = env.step("validate")[0]  # copied out, scored here (the engine cannot mount the task)
        assert env.state.scores[-1].score == 9.0, obs
    finally:
        env.close()
    from pytest_mlgym.sandbox import docker
    assert docker._client(tcp_engine).containers.list(all=True, filters={"label": docker.LABEL}) == []


def test_a_remote_folder_artefact_comes_out_without_links(tcp_engine, tmp_path, monkeypatch):
    from pytest_mlgym.sandbox import DockerOptions, create

    (tmp_path / "ws").mkdir()
    sb = create("docker", tmp_path / "ws", SandboxConfig(docker=DockerOptions(hosts=(tcp_engine,))))
    try:
        sb.exec("mkdir -p ck/sub && echo a > ck/a && echo b > ck/sub/b", 10)
        sb.copy_out("ck", tmp_path / "out")
        assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")) == \
            ["a", "sub", "sub/b"]
        sb.exec("ln -s /etc/passwd ck/evil", 10)
        with pytest.raises(SandboxError, match="not a regular file"):
            sb.copy_out("ck", tmp_path / "out2")
        sb.exec("head -c 3000000 /dev/zero > ck/big", 10)
        sb.exec("rm ck/evil", 10)
        with pytest.raises(SandboxError, match="over the limit"):
            sb.copy_out("ck", tmp_path / "out3", max_bytes=1 << 20)
    finally:
        sb.close()


def test_a_remote_engine_without_a_self_contained_image_is_refused_in_one_line(bench, tcp_engine):
    result = bench.runpytest_subprocess("--sandbox=docker", f"--docker-host={tcp_engine}", "-p", "no:cacheprovider")
    assert result.ret == 4
    [line] = [line for line in result.errlines if line.strip()]
    assert line == (f"ERROR: --sandbox docker: the engine at {tcp_engine} is remote: it cannot mount this host's "
                    f"Python, which the default image uses; give --docker-image (a self-contained image, "
                    f"docker/Dockerfile)")


def test_a_task_that_asks_for_network_gets_it(make):
    sb = make(network=True)
    assert "'lo'" in sb.exec("python -c 'import socket; print(socket.if_nameindex())'", 20).output
    assert len(sb.exec("python -c 'import socket; print(socket.if_nameindex())'", 20).output.split("),")) > 1
