"""The sandbox contract: one suite that every backend (and every isolation mode of the local
backend that works on this host) must pass.

Mode-specific guarantees are asserted only where the mode gives them; where a mode cannot
contain something the case is marked ``xfail`` with the reason, never passed silently.
Processes are found on the host by a random token in their command line (``sleep 1000.<token>``),
which works whether or not the sandbox has its own PID namespace.
"""
from __future__ import annotations

import functools
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from pytest_mlgym.testing.memory import PeakRSS
from pytest_mlgym.sandbox import ExecResult, Sandbox, SandboxConfig, SandboxError, cgroup, create, isolation

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandboxes need Linux (/proc)")

MODES = ("bwrap", "unshare", "none")

# which local isolation modes give which guarantee (the docker backend must give them all)
GIVES = {
    "network": {"bwrap", "unshare", "docker"},
    "hidden": {"bwrap", "docker"},
    "readonly_shell": {"bwrap", "docker"},
    "kill_all": {"bwrap", "docker"},  # and any local mode with a control group of its own (root)
    "pids": {"docker"},  # and any local mode with a control group
}
CANNOT = {
    "network": "no isolation: the sandbox shares the host's network (install bubblewrap or run as root)",
    "hidden": "only bwrap masks host paths; with `unshare -n` or no isolation the host filesystem is visible",
    "readonly_shell": "only bwrap mounts read-only paths; without it the shell writes as the harness's user",
    "kill_all": "without a PID namespace or a control group (run as root), a process that double-forks and "
                "calls setsid leaves the shell's process tree and cannot be found to be killed",
    "pids": "without a control group (run as root with cgroups writable) nothing caps a sandbox's processes: "
            "RLIMIT_NPROC counts every process of the user, and root ignores it",
}
BY_CGROUP = {"kill_all", "pids"}


@functools.cache
def _mode_works(mode: str) -> str | None:
    """None if ``mode`` works on this host, else why not."""
    if mode == "bwrap":
        if not shutil.which("bwrap"):
            return "bwrap is not installed (apt-get install bubblewrap)"
        if not isolation._works(["bwrap", *isolation._PROBE]):
            return "bwrap cannot create namespaces here (allow unprivileged user namespaces or run as root)"
    if mode == "unshare" and not (shutil.which("unshare") and isolation._works(["unshare", "-n", "true"])):
        return "`unshare -n` does not work here (needs root or user namespaces)"
    return None


class Backend:
    """Makes sandboxes of one backend/mode and closes them after the test."""

    def __init__(self, name: str, mode: str | None, root: Path):
        self.name, self.mode, self.root = name, mode, root
        self.made: list[Sandbox] = []

    def make(self, config: SandboxConfig | None = None, workdir: Path | None = None) -> Sandbox:
        workdir = workdir or self.root / "ws"
        workdir.mkdir(parents=True, exist_ok=True)
        sb = create(self.name, workdir, config or SandboxConfig())
        self.made.append(sb)
        return sb

    def require(self, guarantee: str) -> None:
        """xfail, with the reason, where this mode cannot give ``guarantee``."""
        if guarantee in BY_CGROUP and self.name == "local" and cgroup.available():
            return
        if self.name == "local" and self.mode not in GIVES[guarantee]:
            pytest.xfail(f"{self.mode}: {CANNOT[guarantee]}")

    def close(self) -> None:
        for sb in self.made:
            sb.close()


@pytest.fixture(params=[pytest.param(("local", m), id=f"local-{m}") for m in MODES]
                + [pytest.param(("docker", None), id="docker", marks=pytest.mark.docker)])
def backend(request, monkeypatch, tmp_path):
    name, mode = request.param
    if name == "docker":
        from pytest_mlgym.sandbox import docker
        try:
            docker.check()
        except SandboxError as e:
            pytest.skip(f"docker backend unavailable: {e}")
    else:
        if why := _mode_works(mode):
            pytest.skip(f"isolation mode {mode} unavailable: {why}")
        monkeypatch.setenv("MLGYM_ISOLATION", mode)
        isolation.available.cache_clear()
        request.addfinalizer(isolation.available.cache_clear)
    b = Backend(name, mode, tmp_path)
    yield b
    b.close()


@pytest.fixture
def sb(backend) -> Sandbox:
    s = backend.make()
    if backend.name == "local":
        assert s.isolation == backend.mode
    return s


# -- host process helpers ------------------------------------------------------------------------
def _procs(token: str) -> list[int]:
    """Live (not zombie) host processes whose command line contains ``token``."""
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


def _gone(token: str, within: float = 3.0) -> list[int]:
    """Wait until no process with ``token`` runs; return those still running after ``within`` s."""
    end = time.monotonic() + within
    while (left := _procs(token)) and time.monotonic() < end:
        time.sleep(0.05)
    return left


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != b"Z"


@pytest.fixture
def token():
    """A unique `sleep` argument; whatever still runs with it is killed after the test."""
    t = f"1000.{random.randrange(10**8, 10**9)}"
    yield t
    for pid in _procs(t):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def ok(res: ExecResult) -> str:
    assert res.returncode == 0 and not res.timed_out, res
    return res.output


# -- the shell -------------------------------------------------------------------------------------
def test_cd_and_exported_variables_persist(sb):
    ok(sb.exec("mkdir -p sub/deeper && cd sub/deeper", 10))
    ok(sb.exec("export FOO=bar; PLAIN=1; myfn() { echo fn-$1; }", 10))
    out = ok(sb.exec('pwd; echo "$FOO/$PLAIN"; myfn x; bash -c \'echo child=$FOO\'', 10))
    assert out.split("\n")[:4] == [f"{sb.workdir}/sub/deeper", "bar/1", "fn-x", "child=bar"]


def test_exit_codes_are_returned(sb):
    assert sb.exec("true", 10).returncode == 0
    assert sb.exec("false", 10).returncode == 1
    assert sb.exec("(exit 7)", 10).returncode == 7
    assert sb.exec("sh -c 'exit 42'", 10).returncode == 42
    res = sb.exec("definitely-not-a-command-xyz", 10)
    assert res.returncode == 127 and "not found" in res.output


def test_stderr_is_merged_in_order(sb):
    out = ok(sb.exec("echo one; echo two >&2; echo three; python -c 'import sys; sys.stderr.write(\"four\\n\")'", 10))
    assert out.split() == ["one", "two", "three", "four"]


def test_syntax_error_does_not_break_the_next_command(sb):
    ok(sb.exec("cd /; cd - >/dev/null; X=kept", 10))
    for bad in ("if then fi (", 'echo "unterminated', "echo 'unterminated", "done", "echo $((1 +))", "}"):
        res = sb.exec(bad, 10)
        assert res.returncode not in (0, None) and not res.timed_out, (bad, res)
        assert ok(sb.exec("echo fine $X", 10)) == "fine kept\n", bad


def test_quotes_and_newlines_in_commands(sb):
    assert ok(sb.exec("echo 'it'\"'\"'s'; printf '%s\\n' \"a  b\"", 10)) == "it's\na  b\n"
    assert ok(sb.exec("for i in 1 2 3\ndo\n  echo $i\ndone", 10)) == "1\n2\n3\n"
    assert ok(sb.exec("cat <<'EOF'\nhere $doc\nEOF", 10)) == "here $doc\n"


def test_a_command_longer_than_a_pipe_buffer_arrives_whole(sb):
    assert ok(sb.exec(f"printf %s {'x' * 1_000_000} | wc -c", 30)).strip() == "1000000"
    assert ok(sb.exec("echo next", 10)) == "next\n"


def test_exit_returns_its_code_and_the_next_command_works_in_the_same_cwd(sb):
    ok(sb.exec("mkdir -p sub && cd sub", 10))
    res = sb.exec("exit 3", 10)
    assert res.returncode == 3 and not res.timed_out
    assert ok(sb.exec("pwd", 10)).strip() == f"{sb.workdir}/sub"
    assert ok(sb.exec("echo again", 10)) == "again\n"


def test_exit_with_a_background_job_returns_at_once(sb, token):
    start = time.monotonic()
    res = sb.exec(f"sleep {token} & exit 3", 20)
    assert res.returncode == 3 and not res.timed_out, res
    assert time.monotonic() - start < 3
    assert _gone(token) == []
    assert ok(sb.exec("echo back", 10)) == "back\n"


def test_stdin_is_dev_null(sb):
    start = time.monotonic()
    res = sb.exec("cat; read x; echo read=$?; python -c 'input()' 2>&1 | tail -n 1", 20)
    assert not res.timed_out and time.monotonic() - start < 5, res
    assert "read=1" in res.output and "EOFError" in res.output


def test_commands_inherit_no_descriptor_of_the_command_stream(sb):
    """The shell reads its commands from its own pipe (not stdin); a command, or a process it
    leaves behind, must not hold it, or it could swallow the commands sent after it."""
    res = sb.exec("python3 -c \"import os\nfor f in range(1024):\n  try: os.fstat(f); print('fd', f)\n  except OSError: pass\n"
                  "print('stdin', os.readlink('/proc/self/fd/0'))\"", 20)
    assert res.output.split() == ["fd", "0", "fd", "1", "fd", "2", "stdin", "/dev/null"], res.output
    ok(sb.exec("(sleep 2; cat /proc/self/fd/3 /proc/self/fd/255 > stolen 2>&1) &", 10))
    assert ok(sb.exec("echo still here", 10)) == "still here\n"


def test_tracing_and_verbose_shells_do_not_desynchronise(sb):
    ok(sb.exec("set -x", 10))
    res = sb.exec("echo hi", 10)
    assert res.returncode == 0 and "hi" in res.output
    res = sb.exec("echo there; false", 10)
    assert res.returncode == 1 and "there" in res.output and "hi" not in res.output
    ok(sb.exec("set +x; set -v", 10))
    res = sb.exec("echo verbose", 10)
    assert res.returncode == 0 and "verbose" in res.output
    assert sb.exec("(exit 5)", 10).returncode == 5
    ok(sb.exec("set +v", 10))
    assert ok(sb.exec("echo clean", 10)) == "clean\n"


def test_timeout_kills_the_whole_process_group(sb, token):
    ok(sb.exec("mkdir -p sub && cd sub", 10))
    start = time.monotonic()
    res = sb.exec(f"sleep {token} & echo $! > pid; echo started; sleep {token}", 1)
    elapsed = time.monotonic() - start
    assert res.timed_out and res.returncode is None, res
    assert 0.9 < elapsed < 3, elapsed
    assert "started" in res.output and "timed out" in res.output
    assert _gone(token) == [], "a background process outlived the timeout"
    pid = int(sb.read_file("pid").decode().strip())  # the host pid unless there is a PID namespace
    if sb.isolation not in ("bwrap", "docker"):  # no PID namespace: the pid is the host's
        assert not _alive(pid)
    assert ok(sb.exec("pwd", 10)).strip() == f"{sb.workdir}/sub"  # restarted where it was


def test_huge_output_is_truncated_while_streaming(sb):
    limit = 20_000
    tracemalloc.start()
    try:
        start = time.monotonic()
        res = sb.exec("yes | head -c 50000000; echo; echo THE-END", 60)
        elapsed = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.returncode == 0
    assert elapsed < 15, elapsed
    assert peak < 8 << 20, f"the harness held {peak} bytes for 50 MB of output"
    m = re.search(r"\n\[\.\.\. (\d+) bytes of output truncated \.\.\.\]\n", res.output)
    assert m, res.output[:200]
    head, tail = res.output[:m.start()], res.output[m.end():]
    assert head.startswith("y\ny\ny\n") and tail.endswith("y\n\nTHE-END\n")
    assert len(head) + len(tail) <= limit
    assert int(m[1]) + len(head) + len(tail) == 50_000_000 + len("\nTHE-END\n")


def test_output_just_over_the_limit_is_cut_to_the_limit(backend):
    sb = backend.make(SandboxConfig(output_chars=1000))
    assert ok(sb.exec("printf 'x%.0s' $(seq 1000)", 10)) == "x" * 1000
    out = ok(sb.exec("printf 'x%.0s' $(seq 1500)", 10))
    m = re.search(r"\[\.\.\. (\d+) bytes of output truncated \.\.\.\]", out)
    assert m and int(m[1]) == 500 and len(out) - len(m[0]) <= 1002, out


# -- resource limits -------------------------------------------------------------------------------
def test_memory_limit(backend):
    sb = backend.make(SandboxConfig(memory_mb=512))
    assert ok(sb.exec("python -c 'b = bytearray(50 << 20); print(len(b))'", 30)).strip() == str(50 << 20)
    res = sb.exec("python -c 'b = bytearray(1024 << 20); print(\"allocated\")'", 30)
    assert res.returncode != 0 and not res.timed_out, res
    assert not re.search(r"^allocated$", res.output, re.M), res  # (bash may echo the killed command)
    assert "MemoryError" in res.output or res.returncode in (137, -9), res


def test_memory_limit_holds_for_processes_together(backend, token):
    backend.require("pids")  # the same control group caps memory
    sb = backend.make(SandboxConfig(memory_mb=400))
    each = "python -c 'import time; b = bytearray(150 << 20); b[::4096] = b\"x\" * len(b[::4096]); time.sleep(3)'"
    res = sb.exec(f"for i in 1 2 3 4; do {each} & done; wait; echo waited", 20)
    assert "[out of memory: a process reached the" in res.output and "limit of 400 MB" in res.output, res


def test_fork_bomb_stops_at_the_pids_limit_and_is_killed(backend):
    backend.require("pids")
    sb = backend.make(SandboxConfig(pids=64))
    start = time.monotonic()
    res = sb.exec("bomb() { bomb | bomb; }; bomb; echo survived", 5)
    assert res.timed_out and time.monotonic() - start < 15, res
    assert ok(sb.exec("echo alive", 10)).strip() == "alive"  # everything it made is gone: room to fork again


def test_disk_quota_stops_the_command_and_says_why(backend):
    sb = backend.make(SandboxConfig(disk_mb=30, file_size_mb=20))
    res = sb.exec("for i in $(seq 20); do head -c 10000000 /dev/zero > f$i; sleep 0.2; done; echo finished", 30)
    assert not res.timed_out and "finished" not in res.output, res
    assert "disk quota exceeded: the workspace holds" in res.output and "limit of 30 MB" in res.output, res
    ok(sb.exec("rm -f f*", 10))
    assert ok(sb.exec("echo room again", 10)).strip() == "room again"


def test_file_size_limit(backend):
    sb = backend.make(SandboxConfig(file_size_mb=1))
    ok(sb.exec("head -c 100000 /dev/zero > small", 10))
    res = sb.exec("head -c 3000000 /dev/zero > big", 10)
    assert res.returncode != 0, res
    assert (backend.root / "ws" / "big").stat().st_size <= 1 << 20
    res = sb.exec("python -c 'open(\"big2\", \"wb\").write(bytes(3 << 20))'", 30)
    assert res.returncode != 0, res
    assert (backend.root / "ws" / "small").stat().st_size == 100000


# -- containment -----------------------------------------------------------------------------------
@pytest.fixture
def host_server():
    """A TCP server on the host's loopback, accepting connections (the sandbox must not reach it)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    yield srv.getsockname()[1]
    srv.close()


def test_no_network_to_the_host_loopback(backend, host_server):
    with socket.create_connection(("127.0.0.1", host_server), timeout=2):
        pass  # the host itself can connect: the check below is a real one
    backend.require("network")
    sb = backend.make()
    res = sb.exec(f"python -c \"import socket; socket.create_connection(('127.0.0.1', {host_server}), timeout=3); "
                  f"print('CONNECTED')\"", 20)
    assert res.returncode != 0 and "CONNECTED" not in res.output, res


def test_no_dns(backend):
    backend.require("network")
    sb = backend.make()
    res = sb.exec("python -c \"import socket; print(socket.getaddrinfo('pypi.org', 443))\"", 20)
    assert res.returncode != 0 and "gaierror" in res.output, res


def test_network_can_be_allowed(backend, host_server):
    if backend.name == "local" and backend.mode == "none":
        pytest.skip("no isolation: the network is always on")
    sb = backend.make(SandboxConfig(network=True))
    res = sb.exec(f"python -c \"import socket; socket.create_connection(('127.0.0.1', {host_server}), timeout=3); "
                  f"print('CONNECTED')\"", 20)
    if backend.name == "local":
        assert "CONNECTED" in res.output, res


@pytest.fixture
def outside_tmp():
    """A scratch folder outside /tmp: bwrap gives /tmp its own tmpfs, which would hide a secret kept
    there whether or not `hidden` works."""
    for base in (os.environ.get("MLGYM_TEST_SCRATCH"), "/var/tmp", "/dev/shm", str(Path.home())):
        if base and os.access(base, os.W_OK) and not Path(base).resolve().is_relative_to("/tmp"):
            d = Path(tempfile.mkdtemp(prefix="mlgym-contract-", dir=base))
            yield d
            shutil.rmtree(d, ignore_errors=True)
            return
    pytest.skip("needs a writable folder outside /tmp (set MLGYM_TEST_SCRATCH)")


def test_hidden_paths_are_not_readable(backend, outside_tmp):
    secret_dir = outside_tmp / "task"
    (secret_dir / "private").mkdir(parents=True)
    (secret_dir / "private" / "answers.csv").write_text("SECRET-ANSWER\n")
    lone = outside_tmp / "token.txt"
    lone.write_text("SECRET-TOKEN\n")
    backend.require("hidden")
    sb = backend.make(SandboxConfig(hidden=(secret_dir, lone)))
    res = sb.exec(f"cat {secret_dir}/private/answers.csv; ls -A {secret_dir}; cat {lone}; "
                  f"grep -r SECRET {outside_tmp}", 20)
    assert "SECRET" not in res.output, res
    assert ok(sb.exec("python -c 'print(1)'", 20)) == "1\n"  # python still works with paths hidden


def test_readonly_paths_from_the_shell(backend):
    data = backend.root / "ws" / "data"
    data.mkdir(parents=True)
    (data / "train.csv").write_text("a,b\n1,2\n")
    backend.require("readonly_shell")
    sb = backend.make(SandboxConfig(readonly=("data",)))
    for cmd in ("echo hacked > data/train.csv", "touch data/new", "rm data/train.csv", "mkdir data/sub",
                "mv data/train.csv moved.csv"):
        assert sb.exec(cmd, 10).returncode != 0, cmd
    assert (data / "train.csv").read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in data.iterdir()) == ["train.csv"]
    ok(sb.exec("echo fine > elsewhere.txt", 10))  # the rest of the workspace stays writable


def test_readonly_paths_refused_by_write_file(backend):
    data = backend.root / "ws" / "data"
    data.mkdir(parents=True)
    (data / "train.csv").write_text("a,b\n")
    sb = backend.make(SandboxConfig(readonly=("data",)))
    ok(sb.exec("ln -s data alias", 10))
    for path in ("data/train.csv", "data/new.csv", "data/sub/new.csv", "alias/train.csv",
                 f"{sb.workdir}/data/train.csv"):
        with pytest.raises(SandboxError, match="read-only"):
            sb.write_file(path, b"hacked")
    assert (data / "train.csv").read_text() == "a,b\n"
    assert sorted(p.name for p in data.iterdir()) == ["train.csv"]
    assert sb.read_file("data/train.csv") == b"a,b\n"  # still readable


def test_no_harness_environment_leaks(backend, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-leak-check-123")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-leak-check-456")
    monkeypatch.setenv("MLGYM_HARNESS_ONLY", "leak-check-789")
    sb = backend.make(SandboxConfig(env={"MLGYM_SEED": "7"}))
    out = ok(sb.exec("env; cat /proc/self/environ | tr '\\0' '\\n'", 10))
    for secret in ("sk-leak-check-123", "sk-ant-leak-check-456", "leak-check-789", "OPENAI_API_KEY"):
        assert secret not in out
    assert "MLGYM_SEED=7" in out
    assert ok(sb.exec("python -c 'import os; print(os.environ.get(\"OPENAI_API_KEY\"))'", 20)) == "None\n"


# -- files -----------------------------------------------------------------------------------------
def test_file_round_trips(backend, tmp_path):
    sb = backend.make()
    blob = bytes(range(256)) * 40
    sb.write_file("sub/dir/blob.bin", blob)
    assert sb.read_file("sub/dir/blob.bin") == blob
    assert ok(sb.exec("wc -c < sub/dir/blob.bin", 10)).strip() == str(len(blob))
    ok(sb.exec("mkdir -p made && printf 'from the shell' > made/s.txt && cd made", 10))
    assert sb.read_file("s.txt") == b"from the shell"  # relative to the shell's cwd
    assert sb.read_file(f"{sb.workdir}/made/s.txt") == b"from the shell"
    sb.write_file(f"{sb.workdir}/abs.txt", b"absolute")
    assert (tmp_path / "ws" / "abs.txt").read_bytes() == b"absolute"

    src = tmp_path / "host"
    (src / "inner").mkdir(parents=True)
    (src / "one.txt").write_text("1")
    (src / "inner" / "two.txt").write_text("2")
    sb.copy_in(src / "one.txt", f"{sb.workdir}/copied/one.txt")
    sb.copy_in(src, f"{sb.workdir}/tree")
    assert ok(sb.exec(f"cat {sb.workdir}/copied/one.txt {sb.workdir}/tree/inner/two.txt", 10)) == "12"
    dest = tmp_path / "out.bin"
    sb.copy_out(f"{sb.workdir}/sub/dir/blob.bin", dest)
    assert dest.read_bytes() == blob


def test_read_file_refuses_escapes(backend, tmp_path):
    sb = backend.make()
    (tmp_path / "outside.txt").write_text("HOST-SECRET")
    ok(sb.exec(f"ln -s {tmp_path}/outside.txt link_abs; ln -s ../outside.txt link_rel; ln -s /etc link_dir; "
               f"mkdir -p sub", 10))
    for path in ("../outside.txt", "sub/../../outside.txt", str(tmp_path / "outside.txt"), "link_abs",
                 "link_rel", "link_dir/hostname", "/etc/hostname"):
        with pytest.raises(SandboxError):
            sb.read_file(path)
    for path in ("../outside.txt", "link_abs", "link_rel"):
        with pytest.raises(SandboxError):
            sb.write_file(path, b"overwritten")
        with pytest.raises(SandboxError):
            sb.copy_out(path, tmp_path / "leaked.txt")
    with pytest.raises(SandboxError):
        sb.copy_in(tmp_path / "outside.txt", "../escaped.txt")
    assert (tmp_path / "outside.txt").read_text() == "HOST-SECRET"
    assert not (tmp_path / "leaked.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_read_file_refuses_what_is_not_a_regular_file(backend):
    sb = backend.make()
    ok(sb.exec("mkfifo pipe && mkdir folder", 10))
    for path in ("pipe", "folder", "missing.txt"):
        box: list = []
        t = threading.Thread(target=lambda p=path: box.append(_raises(sb.read_file, p)), daemon=True)
        t.start()
        t.join(5)
        if t.is_alive():  # unblock the harness before failing
            os.close(os.open(backend.root / "ws" / "pipe", os.O_WRONLY | os.O_NONBLOCK))
            pytest.fail(f"read_file({path!r}) blocked")
        assert isinstance(box[0], SandboxError), (path, box)
    for path in ("pipe", "folder"):  # writing must not block on a FIFO with no reader either
        with pytest.raises(SandboxError):
            sb.write_file(path, b"data")


def _raises(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - returned to the test to inspect
        return e
    return None


def test_read_file_max_bytes(backend):
    sb = backend.make()
    sb.write_file("hundred.bin", b"x" * 100)
    assert sb.read_file("hundred.bin", max_bytes=100) == b"x" * 100
    assert sb.read_file("hundred.bin", max_bytes=10**6) == b"x" * 100
    with pytest.raises(SandboxError, match="limit"):
        sb.read_file("hundred.bin", max_bytes=99)
    with pytest.raises(SandboxError):
        sb.read_file("hundred.bin", max_bytes=0)



# -- copy-out of artefacts: apparent sizes, bounded memory, holes kept ------------------------------
MB = 1 << 20


def _ways(backend, sb):
    """The copy-out paths of ``sb``: the host folder's and, for a docker sandbox, also the engine's
    archive API (what a remote engine uses; a bind-mounted container serves both)."""
    yield "direct"
    if backend.name == "docker":
        from pytest_mlgym.sandbox.docker import remote
        sb.copy_out = lambda src, dest, max_bytes=remote.MAX_COPY_OUT: remote.copy_out(sb, src, Path(dest), max_bytes)
        try:
            yield "archive"
        finally:
            del sb.copy_out


def test_a_sparse_artefact_comes_out_in_bounded_memory_and_keeps_its_holes(backend, tmp_path):
    sb = backend.make()
    ok(sb.exec("truncate -s 511M big.bin && printf end >> big.bin && mkdir -p art && truncate -s 200M art/one.bin", 20))
    for way in _ways(backend, sb):
        dest = tmp_path / f"out-{way}"
        with PeakRSS() as mem:
            sb.copy_out("big.bin", dest)
        assert mem.grown < 100 * MB, f"{way}: the harness grew by {mem.grown >> 20} MB for a sparse 511 MB artefact"
        st = dest.stat()
        assert st.st_size == (511 * MB) + 3 and st.st_blocks * 512 < 8 * MB, (way, st)
        with open(dest, "rb") as f:
            f.seek(511 * MB - 2)
            assert f.read() == b"\0\0end", way
        sb.copy_out("art", tmp_path / f"art-{way}")
        st = (tmp_path / f"art-{way}" / "one.bin").stat()
        assert st.st_size == 200 * MB and st.st_blocks * 512 < 8 * MB, (way, st)


def test_an_artefact_over_the_limit_by_apparent_size_is_refused_before_copying(backend, tmp_path, monkeypatch):
    """Refused with its apparent size in the message, leaving nothing; from a host folder before a
    byte is copied (the engine's archive is checked header by header, before each file's bytes)."""
    from pytest_mlgym.sandbox import files as local

    sb = backend.make()
    ok(sb.exec("truncate -s 600M big.bin && mkdir -p art/sub && truncate -s 300M art/a.bin art/sub/b.bin", 20))
    copied, real = [], local.stream
    monkeypatch.setattr(local, "stream", lambda *a: copied.append(a) or real(*a))
    for way in _ways(backend, sb):
        for src, what in (("big.bin", "a sparse file"), ("art", "a folder whose files sum")):
            dest = tmp_path / f"out-{way}-{src}"
            with pytest.raises(SandboxError) as e:
                sb.copy_out(src, dest)
            msg = str(e.value)
            assert f"{600 * MB} bytes (apparent size)" in msg and f"limit of {512 * MB} bytes" in msg, (way, what, msg)
            assert "\n" not in msg and not os.path.lexists(dest), (way, what)
            assert not copied, f"{way}: {what}: bytes were copied before the apparent size was checked"


def test_an_artefact_that_grows_while_it_is_copied_is_refused(backend, tmp_path, monkeypatch):
    """It is measured (1 MB, under the 2 MB limit), opened, and then grows past the limit before
    its bytes are read: the copy must stop at the limit and leave nothing, not copy what it finds."""
    from pytest_mlgym.sandbox import files as local
    from pytest_mlgym.sandbox.docker import remote as docker_remote

    sb = backend.make()
    real = local.stream

    def growing(read, out, budget):
        ok(sb.exec("head -c 3000000 /dev/urandom >> grow.bin", 20))
        return real(read, out, budget)

    monkeypatch.setattr(local, "stream", growing)
    monkeypatch.setattr(docker_remote, "stream", growing)
    for way in _ways(backend, sb):
        ok(sb.exec("head -c 1000000 /dev/urandom > grow.bin", 10))
        dest = tmp_path / f"out-{way}"
        if way == "archive":  # the engine's tar header fixed the size: at most that comes out
            try:
                sb.copy_out("grow.bin", dest, max_bytes=2 * MB)
            except SandboxError:
                pass
            assert not dest.exists() or dest.stat().st_size <= 2 * MB
            continue
        with pytest.raises(SandboxError, match=r"grew past the limit of 2097152 bytes while it was copied"):
            sb.copy_out("grow.bin", dest, max_bytes=2 * MB)
        assert not os.path.lexists(dest), way


def test_a_folder_artefact_with_a_link_or_fifo_is_refused_without_blocking_or_leftovers(backend, tmp_path):
    (tmp_path / "outside.txt").write_text("HOST-SECRET")
    sb = backend.make()
    ok(sb.exec(f"mkdir -p a b && echo fine > a/ok.txt && cp a/ok.txt b/ok.txt && ln -s {tmp_path}/outside.txt a/leak "
               f"&& mkfifo b/pipe", 10))
    for way in _ways(backend, sb):
        for src in ("a", "b"):
            dest = tmp_path / f"out-{way}-{src}"
            box: list = []
            t = threading.Thread(target=lambda s=src, d=dest, b=box: b.append(_raises(sb.copy_out, s, d)), daemon=True)
            t.start()
            t.join(60)
            if t.is_alive():
                os.close(os.open(backend.root / "ws" / "b" / "pipe", os.O_WRONLY | os.O_NONBLOCK))
                pytest.fail(f"{way}: copy_out({src!r}) blocked")
            assert isinstance(box[0], SandboxError), (way, src, box)
            assert not os.path.lexists(dest), (way, src, sorted(map(str, dest.rglob("*"))))

# -- closing ---------------------------------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                ppid = int(Path(f"/proc/{e}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(e))
    out, todo = [pid], [pid]
    while todo:
        for c in children.get(todo.pop(), ()):
            out.append(c)
            todo.append(c)
    return out


def test_close_kills_background_and_setsid_processes(backend, token):
    sb = backend.make()
    ok(sb.exec(f"sleep {token} & nohup sleep {token} >/dev/null 2>&1 & setsid sleep {token} >/dev/null 2>&1 &", 10))
    deadline = time.monotonic() + 3
    while len(_procs(token)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_procs(token)) == 3
    tree = _tree(sb._proc.pid) if backend.name == "local" else []
    sb.close()
    assert _gone(token) == []
    time.sleep(0.2)
    assert [p for p in tree if _alive(p)] == [], "part of the sandbox survived close()"
    with pytest.raises(SandboxError):
        sb.exec("echo after close", 5)
    sb.close()  # closing twice is harmless


def test_close_kills_double_forked_daemons(backend, token):
    sb = backend.make()
    ok(sb.exec(f"(setsid sleep {token} >/dev/null 2>&1 &)", 10))
    deadline = time.monotonic() + 3
    while not _procs(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _procs(token)
    backend.require("kill_all")
    sb.close()
    assert _gone(token) == []


# -- the contract suite shipped for third parties (pytest_mlgym.testing.sandbox_contract), over the shipped backends
from pytest_mlgym.testing.sandbox_contract import SandboxContract  # noqa: E402


class TestShippedContractLocal(SandboxContract):
    backend = "local"


@pytest.mark.docker
class TestShippedContractDocker(SandboxContract):
    backend = "docker"
