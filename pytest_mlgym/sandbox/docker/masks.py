"""Hidden paths in docker containers: what ``SandboxConfig.hidden`` masks locally (bwrap), masked in
a container too, for any container that mounts host folders (the agent's sandbox, agent code run
for an evaluator).

- Host folders mounted at their own path (the host's Python prefix, a workspace):
  :func:`mask_mounts` gives a tmpfs over each hidden folder and a read-only bind of an empty
  file over each hidden file inside them.
- A self-contained image (``--docker-image``) has its own Python, so host paths do not apply:
  :func:`image_masks` maps each hidden path inside an installed-distributions folder to (package,
  path inside it), asks the image where that package is (one ``python -c`` per engine, image and
  set of paths, cached) and masks the image's copy (a tmpfs, or ``/dev/null`` bound over a file).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path

from ... import packagedata
from ..base import SandboxError

# the mask over a hidden folder: empty, read-only, nothing to run
TMPFS_MASK = "ro,noexec,nosuid,nodev,size=64k,mode=0555"

# run in the image: for each (package, path), [kind, [paths]]: "found" (each path a [path, is_dir]),
# "missing" (the package is there, the path is not) or "absent" (no such package)
_LOCATE = """
import importlib.util, json, os, sys
out = []
for package, rel in json.loads(sys.argv[1]):
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    dirs = list(spec.submodule_search_locations or []) if spec else []
    hits = [os.path.realpath(os.path.join(d, rel)) for d in dirs if os.path.exists(os.path.join(d, rel))]
    out.append(["found", [[h, os.path.isdir(h)] for h in hits]] if hits else ["missing" if dirs else "absent", []])
print(json.dumps(out))
"""

def mask_mounts(paths, mounted_roots) -> tuple[dict[str, str], dict[str, dict]]:
    """Mounts that mask every existing host path of ``paths`` lying strictly inside one of
    ``mounted_roots`` (host folders mounted in the container at their own path).

    Returns ``(tmpfs, binds)``: ``tmpfs`` is ``{folder: options}`` for the SDK's ``tmpfs=`` (an empty
    read-only tmpfs over each hidden folder); ``binds`` is in the SDK's ``volumes=`` format,
    ``{empty host file: {"bind": hidden file, "mode": "ro"}}`` (one empty file per masked file, so
    the keys stay distinct). Paths outside every root are not in the container: nothing to mask.
    Works with a read-only root: the mount points exist (they are the hidden paths)."""
    roots = [Path(r).resolve() for r in mounted_roots]
    tmpfs: dict[str, str] = {}
    binds: dict[str, dict] = {}
    for p in dict.fromkeys(Path(h).resolve() for h in paths):
        if not p.exists() or not any(p != r and p.is_relative_to(r) for r in roots):
            continue
        if p.is_dir():
            tmpfs[str(p)] = TMPFS_MASK
        else:
            binds[str(_empty_file(p))] = {"bind": str(p), "mode": "ro"}
    return tmpfs, binds


def _empty_file(target: Path) -> Path:
    """An empty, read-only host file to bind over ``target`` (one per target, in a private folder)."""
    folder = Path(tempfile.gettempdir()) / f"mlgym-masks-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise SandboxError(f"{folder} is not a private folder of this user: cannot make the empty files "
                           f"that mask hidden files (remove it)")
    path = folder / hashlib.sha256(str(target).encode()).hexdigest()[:20]
    try:
        if stat.S_ISREG(os.lstat(path).st_mode) and os.lstat(path).st_size == 0:
            return path
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o444)
    os.replace(tmp, path)
    return path


def image_masks(client, image: str, paths) -> tuple[dict[str, str], list]:
    """For a self-contained image: ``(tmpfs, mounts)`` masking the image's own copy of every hidden
    path that lies in an installed-distributions folder on the host (or would: see
    ``packagedata.would_be``). ``mounts`` are SDK ``Mount`` objects binding ``/dev/null`` (there on
    every engine's machine) read-only over hidden files. A declared path that the image's copy of
    the package lacks is a one-line SandboxError: its data may be elsewhere in that version."""
    import docker.types

    wanted = tuple(sorted({w for w in (packagedata.in_site(Path(p)) for p in paths) if w}))
    if not wanted:
        return {}, []
    tmpfs: dict[str, str] = {}
    mounts = []
    for (package, rel), (kind, hits) in zip(wanted, _locate(client, image, wanted), strict=True):
        if kind == "missing":
            raise SandboxError(f"the image {image} has the package {package} but not {rel} in it, which a task hides "
                               f"(package_data): rebuild the image with the version the task declares")
        for where, is_dir in hits:
            if is_dir:
                tmpfs[where] = TMPFS_MASK
            else:
                mounts.append(docker.types.Mount(where, "/dev/null", type="bind", read_only=True))
    return tmpfs, mounts


def _locate(client, image: str, wanted: tuple[tuple[str, str], ...]) -> list:
    """[kind, hits] for each (package, path) in the image: asked once per engine, image and ``wanted``."""
    try:
        image_id = client.images.get(image).id
    except Exception as e:
        raise SandboxError(f"the image {image} is not on the engine: {' '.join(str(e).split())[:200]}") from None
    return _locate_cached(client.api.base_url, client, image_id, wanted)


@functools.lru_cache(maxsize=64)
def _locate_cached(url: str, client, image_id: str, wanted: tuple) -> list:
    from .engine import labels

    try:
        out = client.containers.run(image_id, ["python", "-c", _LOCATE, json.dumps(wanted)], remove=True,
                                    network_mode="none", user="65534:65534", read_only=True, cap_drop=["ALL"],
                                    security_opt=["no-new-privileges"], mem_limit="512m", labels=labels(),
                                    stdout=True, stderr=False)
        rows = json.loads(out.decode().strip().splitlines()[-1])
        if len(rows) != len(wanted):
            raise ValueError(f"{len(rows)} answers for {len(wanted)} paths")
        return rows
    except Exception as e:  # no python in the image, a broken one: one line
        raise SandboxError(f"cannot locate installed packages in the image {image_id[:19]} (python -c): "
                           f"{' '.join(str(e).split())[:200]}") from None
