"""Installed as ``sitecustomize`` for an audited ``prepare.py`` (and every Python it starts): an
audit hook that appends each file opened under the given roots to a log, one path a line. Kept
cheap (string tests only) and silent: an audit hook that raises would break the ``open``."""
import importlib.machinery
import importlib.util
import os
import sys


def _install() -> None:
    log, roots = os.environ.get("MLGYM_AUDIT_LOG"), os.environ.get("MLGYM_AUDIT_ROOTS")
    if not log or not roots:
        return
    prefixes = tuple(os.path.join(r, "") for r in roots.split(os.pathsep) if r)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    seen: set = set()
    fspath, isabs, join, normpath, getcwd, write = os.fspath, os.path.isabs, os.path.join, os.path.normpath, \
        os.getcwd, os.write

    def hook(event, args):
        if event != "open" or not args or isinstance(args[0], int) or args[0] is None:
            return
        try:
            path = fspath(args[0])
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            path = normpath(path if isabs(path) else join(getcwd(), path))
            if path.startswith(prefixes) and path not in seen:
                seen.add(path)
                write(fd, (path + "\n").encode("utf-8", "surrogateescape"))
        except Exception:  # never break the program being audited
            pass

    sys.addaudithook(hook)


_install()
# leave sys.path as the program expects it, and run the environment's own sitecustomize, if any
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
_spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
if _spec is not None and _spec.loader is not None:
    _spec.loader.exec_module(importlib.util.module_from_spec(_spec))
