"""Does a task read installed package data it does not declare? (``task.yaml``'s ``package_data``)

:func:`audit_prepare` runs a task's ``prepare.py`` into a fresh folder under a Python audit hook
(event ``open``, in the prepare's process and every Python process it starts) and lists the data
files it opened inside installed distributions (purelib, platlib, the user site: code, extension
modules, ``.pth`` files and distribution metadata are not data). Each one must be covered by a
declared entry, hidden or visible: data that ships in a package the agent can import is either
masked in its sandbox or declared a tool it may use. Importable without pytest::

    from pytest_mlgym.testing.package_audit import audit_prepare
    assert not (audit := audit_prepare(task)).problems(), audit.problems()

The hook sees files opened through Python (``open``, ``os.open``, ``io.open_code``: pandas, numpy,
pickle, gzip/bz2, importlib.resources), in every Python process the prepare starts (it is installed
as ``sitecustomize``); a C library that opens a file itself, or a Python started with ``-S``/``-I``,
is not seen. Other copies of the same data in other packages are not found by it: declare those too.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .. import packagedata
from ..task import DATA_MISSING_EXIT, DataMissing, Task, TaskError

# code, not data: Python, extension modules and shared libraries, .pth files, web assets (sklearn's
# estimator CSS, read at import)
CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".pyi", ".pyd", ".pyx", ".pxd", ".so", ".pth", ".dll", ".dylib",
                           ".css", ".js"})
_SHARED_LIB = re.compile(r"\.so(\.\d+)+$")  # libfoo.so.1.2
_METADATA = (".dist-info", ".egg-info")
_HOOK = Path(__file__).with_name("_audit_hook.py")


def is_data(path: Path) -> bool:
    """A file that is not code or metadata: not .py/.pyc/.so/.pth/.css..., not in __pycache__ or *.dist-info."""
    if path.suffix in CODE_SUFFIXES or _SHARED_LIB.search(path.name):
        return False
    return not any(part == "__pycache__" or part.endswith(_METADATA) for part in path.parts)


@dataclass(frozen=True)
class Audit:
    task: Task
    size: str
    roots: tuple[Path, ...]  # the installed-distributions folders looked in
    opened: tuple[Path, ...]  # data files inside them the prepare opened (as opened, sorted)
    undeclared: tuple[Path, ...]  # those no package_data entry covers
    seconds: float  # the prepare's wall time

    def problems(self) -> list[str]:
        """One line per undeclared file, naming the task and the file, with the entry that covers it."""
        out = []
        for path in self.undeclared:
            where = packagedata.in_site(path, self.roots)
            hint = f" (add {{package: {where[0]}, path: {where[1]}}}, or its folder)" if where else ""
            out.append(f"{self.task.id}: prepare.py --size {self.size} reads {path}, installed package data that "
                       f"{self.task.path / 'task.yaml'}'s package_data does not declare{hint}")
        return out


def covered(path: Path, declared: tuple[Path, ...]) -> bool:
    return any(path == d or path.is_relative_to(d) for d in declared)


def audit_prepare(task: Task, size: str = "lite", *, timeout: float = 1800) -> Audit:
    """Run ``task``'s prepare.py (``size``) into a fresh temporary folder under the audit hook.

    Raises :class:`DataMissing` when the size's data is absent, :class:`TaskError` when the prepare
    fails (or the task has none), one line each."""
    if not task.spec.prepare:
        raise TaskError(f"{task.path / 'task.yaml'}: prepare: the task has no prepare.py to audit")
    roots = packagedata.site_dirs()
    declared = task.package_paths()
    with tempfile.TemporaryDirectory(prefix=f"mlgym-audit-{task.id}-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "hook").mkdir()
        shutil.copyfile(_HOOK, tmp / "hook" / "sitecustomize.py")
        log = tmp / "opened.log"
        # the roots as Python may spell them (sys.path entries) and resolved: the hook only compares strings
        spelled = {str(r) for r in roots} | {os.path.normpath(p) for p in sys.path if p and Path(p).resolve() in roots}
        env = {**os.environ, "MLGYM_AUDIT_LOG": str(log), "MLGYM_AUDIT_ROOTS": os.pathsep.join(sorted(spelled)),
               "PYTHONPATH": os.pathsep.join([str(tmp / "hook"), *filter(None, [os.environ.get("PYTHONPATH")])])}
        start = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, str(task.path / task.spec.prepare), "--size", size,
                                   "--out", str(tmp / "out")], check=False, cwd=task.path, env=env, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TaskError(f"{task.id}: prepare.py --size {size} ran past {timeout:g} s under the audit") from None
        seconds = time.monotonic() - start
        if proc.returncode != 0:
            last = ((proc.stderr or proc.stdout).strip().splitlines() or ["no output"])[-1]
            if proc.returncode == DATA_MISSING_EXIT:
                raise DataMissing(f"{task.id} ({size}): {last}")
            raise TaskError(f"{task.id}: prepare.py --size {size} failed (exit {proc.returncode}): {last}")
        lines = log.read_text(encoding="utf-8", errors="surrogateescape").splitlines() if log.exists() else []
    # the hook logged only paths under the roots, as opened (a link is judged by its own name, and
    # covered when it or its target lies in a declared entry)
    opened = sorted({p for p in map(Path, filter(None, lines)) if p.is_file() and is_data(p)})
    undeclared = [p for p in opened if not (covered(p, declared) or covered(p.resolve(), declared))]
    return Audit(task, size, roots, tuple(opened), tuple(undeclared), seconds)
