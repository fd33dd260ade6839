"""Process isolation on this host: bubblewrap where it works, else ``unshare -n``, else none.

``bwrap`` gives a read-only view of the host with the hidden paths (task folders with their
evaluators and answers, the data cache) masked, a private ``/tmp`` of bounded size, no network,
no capabilities, and its own PID namespace, so everything a command started dies with the
sandbox. ``unshare`` only takes the network away (and, as root, every capability, so that the
shell cannot enter the host's network again). The mode in use is recorded with every result.
"""
from __future__ import annotations

import functools
import os
import resource
import shutil
import site
import subprocess
import sys
from pathlib import Path

MODES = ("bwrap", "unshare", "none")

_PROBE = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net", "--unshare-pid",
          "--die-with-parent", "--cap-drop", "ALL", "--size", "1048576", "--tmpfs", "/tmp", "true"]


def tmp_mb(memory_mb: int) -> int:
    """The size of a sandbox's private /tmp, a tmpfs: its pages count as the sandbox's memory, so
    it takes at most a quarter of the memory limit, and a full /tmp leaves room to clean it up."""
    return max(16, min(1024, memory_mb // 4))
# capabilities are dropped, so root in a sandbox cannot unmount the masks over hidden folders,
# remount the host read-write, or enter the host's network namespace again
_NO_CAPS = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--"]


@functools.cache
def available() -> str:
    """The strongest mode that actually works here (probed once per process)."""
    forced = os.environ.get("MLGYM_ISOLATION")
    if forced:
        if forced not in MODES:
            raise ValueError(f"MLGYM_ISOLATION={forced}: choose from {', '.join(MODES)}")
        return forced
    if shutil.which("bwrap") and _works(["bwrap", *_PROBE]):
        return "bwrap"
    if shutil.which("unshare") and _works(["unshare", "-n", *_no_caps(), "true"]):
        return "unshare"
    return "none"


def describe(mode: str) -> str:
    from . import cgroup

    return {
        "bwrap": "bubblewrap: no network, read-only host, task folders hidden, own PID namespace, no capabilities",
        "unshare": "unshare -n: no network, but the host filesystem is visible (install bubblewrap)",
        "none": "NO isolation: network on and the host filesystem visible (install bubblewrap or run as root)",
    }[mode] + ("; a control group per sandbox caps its processes and memory" if cgroup.available() else
               "; no control groups (run as root): processes and total memory are not capped")


def _no_caps() -> list[str]:
    """The prefix that drops every capability of a root shell (without it, root can undo ``unshare``)."""
    return _NO_CAPS if os.geteuid() == 0 and shutil.which("setpriv") else []


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _python_roots() -> list[Path]:
    """Folders the Python stack (and this engine, which evaluators import) live in; kept visible
    even when a hidden path or the private /tmp covers them (e.g. a checkout under /tmp)."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(__file__).resolve().parents[1]}
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if user_site and Path(user_site).is_dir():
        roots.add(Path(user_site))
    return sorted(r.resolve() for r in roots)


def wrap(argv: list[str], *, mode: str, cwd: Path, writable=(), readonly=(), hidden=(),
         network: bool = False, tmp_size_mb: int = 1024) -> list[str]:
    """The command line that runs ``argv`` isolated in ``mode``.

    ``hidden`` paths are masked (bwrap only), then ``writable`` and ``readonly`` paths are
    bound back in that order, so a read-only folder inside a writable one stays read-only.
    """
    if mode == "none":
        return list(argv)
    if mode == "unshare":
        return [*_no_caps(), *argv] if network else ["unshare", "-n", "--", *_no_caps(), *argv]
    out = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--size", str(tmp_size_mb << 20),
           "--tmpfs", "/tmp", "--unshare-pid", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if not network:
        out.append("--unshare-net")
    hidden = [Path(h).resolve() for h in hidden if Path(h).exists()]
    for h in hidden:
        out += ["--size", "65536", "--tmpfs", str(h)] if h.is_dir() else ["--ro-bind", "/dev/null", str(h)]
    for root in _python_roots():
        if any(root.is_relative_to(h) for h in [*hidden, Path("/tmp")]):
            out += ["--ro-bind", str(root), str(root)]
    for p in writable:
        out += ["--bind", str(p), str(p)]
    for p in readonly:
        out += ["--ro-bind", str(p), str(p)]
    return out + ["--chdir", str(cwd), "--", *argv]


def limiter(memory_mb: int, file_size_mb: int, cpu_s: float, group=None):
    """A ``preexec_fn`` setting rlimits on address space, file size and CPU seconds, and moving the
    process into its control group (``cgroup.Group``), when it has one."""
    def apply():
        for res, value in ((resource.RLIMIT_AS, memory_mb << 20), (resource.RLIMIT_FSIZE, file_size_mb << 20),
                           (resource.RLIMIT_CPU, max(1, int(cpu_s)))):
            resource.setrlimit(res, (value, value))
        if group is not None:
            group.enter()
    return apply


def base_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: none of the harness's variables (API keys!) reach sandboxed code."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/sbin", "/usr/local/bin",
                                 "/usr/sbin", "/usr/bin", "/sbin", "/bin"]),
        "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb", "PAGER": "cat",
        "GIT_PAGER": "cat", "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1)),
    }
    env.update(extra or {})
    return env
