"""Process isolation on this host: bubblewrap where it works, else ``unshare -n``, else none.

``bwrap`` builds the sandbox's filesystem from an allow-list, never from the host with holes:
the system (``/usr`` and its links, ``/etc`` without the files only their owner may read,
``/sys``), the Python stack this process runs on, and the folders a caller names (a workspace
read-write, data read-only); everything else of the host (``/root``, ``/home``, other
checkouts, the repository and its ``.git``, the task folders, sockets such as Docker's) is not
there at all. Inside an allowed folder, ``hidden`` paths are masked (installed package data that
holds a task's answers). It adds a private ``/tmp`` of bounded size, no network, no
capabilities, and its own PID namespace, so everything a command started dies with the sandbox.
``unshare`` only takes the network away (and, as root, every capability, so that the shell cannot
enter the host's network again). The mode in use is recorded with every result.
"""
from __future__ import annotations

import functools
import os
import resource
import shutil
import site
import stat
import subprocess
import sys
from pathlib import Path

MODES = ("bwrap", "unshare", "none")  # strongest first
RANK = {"none": 0, "unshare": 1, "bwrap": 2, "docker": 2}  # what a mode guarantees, for --mlgym-min-isolation
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
ENGINE = Path(__file__).resolve().parents[1]  # this package: evaluators import it (pytest_mlgym.sdk)

_PROBE = ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
          "--symlink", "usr/lib64", "/lib64", "--dev", "/dev", "--proc", "/proc", "--unshare-net", "--unshare-pid",
          "--die-with-parent", "--cap-drop", "ALL", "--size", "1048576", "--perms", "1777", "--tmpfs", "/tmp", "true"]


def tmp_mb(memory_mb: int) -> int:
    """The size of a sandbox's private /tmp, a tmpfs: its pages count as the sandbox's memory, so
    it takes at most a quarter of the memory limit, and a full /tmp leaves room to clean it up."""
    return max(16, min(1024, memory_mb // 4))


# capabilities are dropped, so root in a sandbox cannot unmount the masks over hidden folders,
# remount the host read-write, or enter the host's network namespace again
_NO_CAPS = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--"]


@functools.cache
def available() -> str:
    """The strongest mode that actually works here (probed once per process); ``MLGYM_ISOLATION``
    forces one (bwrap, unshare or none)."""
    forced = os.environ.get("MLGYM_ISOLATION")
    if forced:
        if forced not in MODES:
            raise ValueError(f"MLGYM_ISOLATION={forced}: choose from {', '.join(MODES)}")
        return forced
    return best()


@functools.cache
def best() -> str:
    """The strongest mode this machine can give, whatever ``MLGYM_ISOLATION`` says."""
    if shutil.which("bwrap") and _works(["bwrap", *_PROBE]):
        return "bwrap"
    if shutil.which("unshare") and _works(["unshare", "-n", *_no_caps(), "true"]):
        return "unshare"
    return "none"


def describe(mode: str) -> str:
    from . import cgroup

    return {
        "bwrap": "bubblewrap: no network, a filesystem allow-list (system, Python, the workspace), own PID "
                 "namespace, no capabilities",
        "unshare": "unshare -n: no network, but the host filesystem and processes are visible (install bubblewrap)",
        "none": "NO isolation: network on, the host filesystem and processes visible (install bubblewrap or run "
                "as root)",
    }[mode] + ("; a control group per sandbox caps its processes and memory" if cgroup.available() else
               "; no control groups (run as root): processes and total memory are not capped")


def _no_caps() -> list[str]:
    """The prefix that drops every capability of a root shell (without it, root can undo ``unshare``)."""
    return _NO_CAPS if os.geteuid() == 0 and shutil.which("setpriv") else []


def _as_user(uid: int | None) -> list[str]:
    """The prefix that runs a command as ``uid`` with no capabilities at all (root only; else none)."""
    if uid is None or os.geteuid() != 0 or not shutil.which("setpriv"):
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *_NO_CAPS[1:]]


def can_switch_user() -> bool:
    return bool(_as_user(0))


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def python_roots() -> list[Path]:
    """The folders of the Python stack this process runs on (prefixes and the user site, when it is on)."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)}
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if user_site and Path(user_site).is_dir() and user_site in sys.path:
        roots.add(Path(user_site))
    return sorted({r.resolve() for r in roots})


@functools.cache
def _system() -> tuple[str, ...]:
    """bwrap arguments for the system part of the view: the system folders read-only (links as links),
    and in /etc, whatever the world may not read (shadow, private keys) masked."""
    out: list[str] = []
    for d in SYSTEM:
        if os.path.islink(d):
            out += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            out += ["--ro-bind", d, d]
    for dirpath, dirnames, filenames in os.walk("/etc"):
        for name in list(dirnames):
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o005 != 0o005:
                out += ["--size", "4096", "--tmpfs", p]
                dirnames.remove(name)
        for name in filenames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and not st.st_mode & 0o004:
                out += ["--ro-bind", "/dev/null", p]
    return tuple(out)


def wrap(argv: list[str], *, mode: str, cwd: Path, writable=(), readonly=(), hidden=(),
         network: bool = False, tmp_size_mb: int = 1024, uid: int | None = None) -> list[str]:
    """The command line that runs ``argv`` isolated in ``mode``.

    With bwrap the view is the system, the Python stack, ``writable`` (read-write) and ``readonly``
    folders, and nothing else; ``hidden`` paths inside them are masked. ``uid``: run as that user
    (where this process is root), not only without capabilities.
    """
    user = _as_user(uid)
    if mode == "none":
        return [*(user or []), *argv]
    if mode == "unshare":
        prefix = user or _no_caps()
        return [*prefix, *argv] if network else ["unshare", "-n", "--", *prefix, *argv]
    out = ["bwrap", "--dev", "/dev", "--proc", "/proc", "--size", str(tmp_size_mb << 20), "--perms", "1777",
           "--tmpfs", "/tmp", "--unshare-pid", "--die-with-parent", "--new-session",
           *([] if user else ["--cap-drop", "ALL"]), *_system()]
    if not network:
        out.append("--unshare-net")
    roots = python_roots()
    writable = [Path(p).resolve() for p in writable]
    readonly = [Path(p).resolve() for p in readonly]
    shown = [*map(Path, SYSTEM), *roots, *writable, *readonly]
    out += _folders_above([*roots, *writable, *readonly])
    for root in roots:
        out += ["--ro-bind", str(root), str(root)]
    hidden = [h for h in (Path(h).resolve() for h in hidden) if h.exists()]
    inside = [h for h in hidden if any(h != s and h.is_relative_to(s) for s in shown)]
    for h in inside:
        out += _mask(h)
    for root in roots:  # a hidden folder that holds the Python stack (e.g. a venv in a checkout) keeps it
        if any(root.is_relative_to(h) for h in inside):
            out += ["--ro-bind", str(root), str(root)]
    for p in writable:
        out += ["--bind", str(p), str(p)]
    for p in readonly:
        out += ["--ro-bind", str(p), str(p)]
    for h in inside:  # masks inside a folder bound above are applied again, over it
        if any(h != p and h.is_relative_to(p) for p in (*writable, *readonly)):
            out += _mask(h)
    return out + ["--chdir", str(cwd), "--", *user, *argv]


def _folders_above(paths: list[Path]) -> list[str]:
    """The folders that lead to bound paths, made traversable by any user (bwrap would copy the host's
    modes: /root is 0700, and a sandbox that runs as another user could not reach Python under it)."""
    made: list[Path] = []
    for p in paths:
        for a in reversed(p.parents):
            if a == Path("/") or a in made or any(a == Path(s) or a.is_relative_to(s) for s in (*SYSTEM, "/tmp")):
                continue
            made.append(a)
    return [arg for a in made for arg in ("--perms", "0755", "--dir", str(a))]


def _mask(path: Path) -> list[str]:
    return ["--size", "65536", "--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]


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


NUMERIC_ENV = ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS", "ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE",
               "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")


def base_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: none of the harness's variables (API keys!) reach sandboxed code."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/sbin", "/usr/local/bin",
                                 "/usr/sbin", "/usr/bin", "/sbin", "/bin"]),
        "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb", "PAGER": "cat",
        "GIT_PAGER": "cat", "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1)),
        # the numeric libraries' thread counts and instruction sets, as the harness's environment sets
        # them (``measure --threads/--isa`` re-runs a baseline as another CPU would: authoring.spread)
        **{name: os.environ[name] for name in NUMERIC_ENV if name in os.environ},
    }
    env.update(extra or {})
    return env
