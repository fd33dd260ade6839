"""Agent code that an evaluator calls runs in a sandbox of its own, which the harness starts.

An evaluator never starts the agent's code itself, and never beside itself: it asks the
:class:`Broker` over a Unix socket (``MLGYM_RUNNER``) to run one file of its scratch folder, and
gets back the two ends of the pipes to it (``SCM_RIGHTS``). The broker copies that file alone into
a folder of its own and runs it:

- locally: under ``isolation.wrap`` (bubblewrap: its own PID namespace, the filesystem allow-list
  with the task's package data masked, no network, no capabilities), as another user where the
  harness is root, in a control group of its own (processes, memory, CPU time);
- with the docker backend: in a container of its own (no network, read-only root, no
  capabilities, another user), joined to the evaluator through two FIFOs.

So the agent's code never sees the evaluator's processes, environment (``MLGYM_PRIVATE_DATA``,
the seed), private data or stdout. The broker also enforces a budget of CPU seconds over all the
code's processes together (detached ones included) and says why it stopped the code, so the
evaluator's one-line reason is the engine's, not guessed. The evaluator side is
``pytest_mlgym.sdk.untrusted``.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..compute import tree_cpu_seconds
from . import cgroup, isolation
from .shell import kill_tree

ENV = "MLGYM_RUNNER"  # the evaluator's environment: the broker's socket
RUNNER_UID = 65533  # the agent code's user, where the harness may switch (not the agent's shell's, 65534)
CHILD = isolation.ENGINE / "sdk" / "untrusted.py"  # runs as a script: the child's half of the protocol
MAX_FILE = 16 << 20  # the agent's code file


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048
    pids: int = 256
    cpu_s: float = 3600.0  # CPU seconds of all the code's processes together (a request may lower it)
    file_size_mb: int = 64


class RunnerError(Exception):
    """The code could not be started; one line."""


class Broker:
    """Serves one evaluation: every connection to its socket is one run of agent code."""

    def __init__(self, folder: Path, *, limits: Limits = Limits(), hidden=(), mode: str | None = None, engine=None):
        self.folder = Path(folder).resolve()  # the files an evaluator may name
        self.limits, self.hidden, self.engine = limits, tuple(hidden), engine
        self.mode = mode or isolation.available()
        self.dir = Path(tempfile.mkdtemp(prefix="mlgym-r-"))  # short: a socket path holds 107 bytes
        self.dir.chmod(0o755)
        self.path = self.dir / "sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.path))
        self.path.chmod(0o777)  # an evaluator in a container runs as another user
        self._sock.listen(8)
        self._runs: list[Run] = []
        self.failures: list[str] = []  # runs the harness could not start
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="mlgym-broker").start()

    def env(self) -> dict[str, str]:
        return {ENV: str(self.path)}

    def running(self) -> int:
        """How many runs of agent code are alive now."""
        with self._lock:
            return sum(r.alive() for r in self._runs)

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._lock:
            runs, self._runs = self._runs, []
        for run in runs:
            run.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Broker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- serving -------------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="mlgym-runner").start()

    def _serve(self, conn: socket.socket) -> None:
        run = None
        try:
            req = _read_request(conn)
            cpu_s = min(float(req.get("cpu_s") or self.limits.cpu_s), self.limits.cpu_s)
            src = self._file(req.get("file"))
            seed = int(req.get("seed") or 0)
            try:
                run = LocalRun(self, src, seed) if self.engine is None else self.engine.start_code(self, src, seed)
            except RunnerError as e:  # the harness's failure, not the agent's: the evaluation says so
                self.failures.append(str(e))
                raise
            with self._lock:
                if self._closed:
                    raise RunnerError("the evaluation is over")
                self._runs.append(run)
            w, r = run.fds()
            socket.send_fds(conn, [b'{"ok": true}\n'], [w, r])
            os.close(w)
            os.close(r)
            self._watch(conn, run, cpu_s)
        except (RunnerError, ValueError, OSError) as e:
            _send(conn, {"error": " ".join(str(e).split())[:300] or type(e).__name__})
        finally:
            if run is not None:
                run.kill()
                with self._lock:
                    if run in self._runs:
                        self._runs.remove(run)
            conn.close()

    def _file(self, name) -> Path:
        if not isinstance(name, str) or not name:
            raise RunnerError("no file named")
        path = Path(os.path.realpath(self.folder / name))
        if not path.is_relative_to(self.folder):
            raise RunnerError(f"{name}: not in the evaluation's folder")
        st = os.lstat(path) if path.exists() else None
        if st is None or not stat.S_ISREG(st.st_mode):
            raise RunnerError(f"{Path(name).name}: not a regular file")
        if st.st_size > MAX_FILE:
            raise RunnerError(f"{Path(name).name}: {st.st_size} bytes, over the limit of {MAX_FILE}")
        return path

    def _watch(self, conn: socket.socket, run: "Run", cpu_s: float) -> None:
        """Until the evaluator hangs up: stop the code past its CPU budget, report how it ended,
        answer questions about its CPU time."""
        buf, reported = b"", False
        while not self._closed:
            if select.select([conn], [], [], 0.25)[0]:
                chunk = conn.recv(4096)
                if not chunk:
                    return  # the evaluator is done with it (or gone): it is killed in _serve
                buf += chunk
                while b"\n" in buf:
                    _, _, buf = buf.partition(b"\n")  # the one question: how much CPU so far
                    _send(conn, {"cpu_s": round(run.cpu_seconds() or 0.0, 3)})
            if reported:
                continue
            used = run.cpu_seconds()
            why = None
            if used is not None and used > cpu_s:
                why = f"the agent's code used more than its {cpu_s:g} s of CPU time"
                run.kill()
            code = run.poll()
            if code is not None or why:
                if why is None and run.oom_killed():
                    why = f"the agent's code ran out of memory (limit {self.limits.memory_mb} MB)"
                _send(conn, {"exit": code, "why": why})
                reported = True


class Run:
    """One run of agent code: its folder with the copied file, and the process (LocalRun) or the
    container (docker/run.py's DockerRun) that runs it."""

    def __init__(self, broker: Broker, src: Path, seed: int):
        self.broker, self.seed = broker, seed
        self.dir = Path(tempfile.mkdtemp(prefix="mlgym-code-"))  # child.py, and code/<the file>
        self.code = self.dir / "code"
        self.code.mkdir()
        self.file = self.code / src.name
        with open(src, "rb") as f, open(self.file, "wb") as out:  # the file alone, never its folder
            shutil.copyfileobj(f, out)
        shutil.copyfile(CHILD, self.dir / "child.py")
        for p, mode in ((self.dir, 0o755), (self.code, 0o755), (self.file, 0o644), (self.dir / "child.py", 0o644)):
            p.chmod(mode)

    def argv(self, python: str) -> list[str]:
        return [python, "-B", "-s", "-E", "-u", str(self.dir / "child.py"), str(self.file), str(self.seed)]

    def env(self) -> dict[str, str]:
        return isolation.base_env(Path("/tmp"), {"PYTHONHASHSEED": str(self.seed), "PYTHONDONTWRITEBYTECODE": "1"})

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # what the broker asks of a run
    def fds(self) -> tuple[int, int]:
        """New descriptors of the pipe ends the evaluator gets: (to the code, from the code)."""
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def poll(self) -> int | None:
        """The exit code once it has ended, else None."""
        raise NotImplementedError

    def oom_killed(self) -> bool:
        raise NotImplementedError

    def cpu_seconds(self) -> float | None:
        """CPU time of all its processes together, or None where it cannot be counted."""
        raise NotImplementedError

    def kill(self) -> None:
        """Stop everything it started and remove its folders (idempotent)."""
        raise NotImplementedError


class LocalRun(Run):
    def __init__(self, broker: Broker, src: Path, seed: int):
        super().__init__(broker, src, seed)
        lim = broker.limits
        self.group = cgroup.Group.create(pids=lim.pids, memory_mb=lim.memory_mb)
        uid = RUNNER_UID if isolation.can_switch_user() and _reachable(broker.mode) else None
        argv = isolation.wrap(self.argv(sys.executable), mode=broker.mode, cwd=self.code,
                              readonly=[self.dir], hidden=broker.hidden,
                              tmp_size_mb=isolation.tmp_mb(lim.memory_mb), uid=uid)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         cwd=self.code, env=self.env(), start_new_session=True,
                                         preexec_fn=isolation.limiter(lim.memory_mb, lim.file_size_mb, lim.cpu_s,
                                                                      self.group))
        except OSError as e:
            self.kill()
            raise RunnerError(f"cannot start the agent's code: {e}") from None

    def fds(self) -> tuple[int, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        return os.dup(self.proc.stdin.fileno()), os.dup(self.proc.stdout.fileno())

    def alive(self) -> bool:
        return self.proc.poll() is None

    def poll(self) -> int | None:
        return self.proc.poll()

    def oom_killed(self) -> bool:
        return self.group is not None and self.group.oom_kills() > 0

    def cpu_seconds(self) -> float | None:
        if self.group is not None and (used := self.group.cpu_seconds()) is not None:
            return used
        return tree_cpu_seconds(self.proc.pid)  # its PID namespace (bwrap) keeps detached ones in the tree

    def kill(self) -> None:
        if self.group is not None:
            self.group.kill()
        proc = getattr(self, "proc", None)
        if proc is not None:
            kill_tree(proc.pid)
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            proc.wait()
        if self.group is not None:
            self.group.remove()
            self.group = None
        self.cleanup()


def _read_request(conn: socket.socket) -> dict:
    conn.settimeout(30)
    buf = b""
    while b"\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk or len(buf) > 1 << 16:
            raise RunnerError("malformed request")
        buf += chunk
    conn.settimeout(None)
    req = json.loads(buf.partition(b"\n")[0])
    if not isinstance(req, dict):
        raise RunnerError("malformed request")
    return req


def _send(conn: socket.socket, msg: dict) -> None:
    try:
        conn.sendall(json.dumps(msg).encode() + b"\n")
    except OSError:
        pass


def _reachable(mode: str) -> bool:
    """Can another user reach this Python and the temporary folder? Under bwrap only the folder of
    the interpreter counts (the folders above bound paths are made open); otherwise the whole chain."""
    def open_to_all(folder: Path) -> bool:
        chain = [folder] if mode == "bwrap" else [folder, *folder.parents]
        return all(os.stat(d).st_mode & 0o005 == 0o005 for d in chain if d.exists())
    return open_to_all(Path(sys.executable).resolve().parent) and open_to_all(Path(tempfile.gettempdir()))
