"""What a score is taken on: the scored artefact's and the changed workspace files' content hashes.

The trajectory references workspace files by content, never copies them: each score adds the
sha256 and size of the scored artefact and of the files changed since the last score.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

HASH_BUDGET = 512 << 20  # bytes of changed files (artefact aside) hashed per score; beyond: size only
MAX_FILES = 20_000  # workspace files looked at per score


class ScoreFingerprints:
    """What each score of an episode is taken on, for its trajectory entry: the artefact's and the
    changed files' hashes (:class:`WorkspaceFiles`), or the artefact's alone when the workspace is
    on another machine (a remote Docker Engine). :meth:`take` never fails a score."""

    def __init__(self, sandbox, workspace: Path, skip: tuple[str, ...] = (), artefact: str = ""):
        self.sandbox, self.artefact = sandbox, artefact
        self.files = WorkspaceFiles(workspace, skip, artefact) if sandbox.files_local else None

    def take(self) -> dict:
        try:
            if self.files is None:  # the workspace is not on this machine: the artefact only
                return {"artefact": _remote_artefact(self.sandbox, self.artefact)}
            return self.files.scan()
        except Exception as e:  # bookkeeping must never change an episode's outcome
            return {"artefact": {"path": self.artefact, "sha256": None, "size": None,
                                 "error": f"{type(e).__name__}: {e}"[:300]}}


class WorkspaceFiles:
    """Content addresses (sha256, size) of a workspace's files, for the trajectory.

    :meth:`scan` (at each score) stats every regular file (links are never followed, the
    read-only data folder is skipped) and hashes only the artefact's files and those whose
    (size, mtime, ctime, inode) changed since the last scan; a hash is reused while its file's
    stat key holds, so no unchanged file is read twice. A folder artefact's sha256 is that of its
    ``sha256sum`` listing (``<sha256>  <path inside the folder>`` lines, sorted by path).
    """

    def __init__(self, root: Path, skip: tuple[str, ...] = (), artefact: str = ""):
        self.root, self.skip = Path(root), {os.path.normpath(s) for s in skip if s}
        self.name, self.artefact = artefact, os.path.normpath(artefact or ".")
        self.hashes: dict[str, tuple[tuple, str]] = {}  # path -> (stat key, sha256)
        self.seen, _ = self._walk(lambda rel, key: False)  # the workspace as the episode starts

    def scan(self) -> dict:
        art, budget = self.artefact + "/", [HASH_BUDGET]

        def wanted(rel: str, key: tuple) -> bool:
            if rel == self.artefact or rel.startswith(art):
                return True
            if self.seen.get(rel) == key or key[0] > budget[0]:
                return False
            budget[0] -= key[0]
            return True
        now, truncated = self._walk(wanted)
        out: dict = {"artefact": {"path": self.name, "sha256": None, "size": None, "missing": True}}
        inside = {rel[len(art):]: self._entry(rel, key) for rel, key in now.items() if rel.startswith(art)}
        if self.artefact in now:
            out["artefact"] = {"path": self.name, **self._entry(self.artefact, now[self.artefact])}
        elif inside:
            out["artefact"] = {"path": self.name, "sha256": tree_sha256(inside),
                               "size": sum(e["size"] for e in inside.values()), "files": inside}
        out["changed"] = {rel: self._entry(rel, key) for rel, key in now.items() if self.seen.get(rel) != key}
        if removed := sorted(set(self.seen) - set(now)) if not truncated else []:
            out["removed"] = removed
        if truncated:
            out["truncated"] = f"more than {MAX_FILES} files: only the first were looked at"
        self.seen = {**self.seen, **now} if truncated else now
        self.hashes = {rel: h for rel, h in self.hashes.items() if rel in self.seen}
        return out

    def _entry(self, rel: str, key: tuple) -> dict:
        h = self.hashes.get(rel)
        return {"sha256": h[1] if h and h[0] == key else None, "size": key[0]}

    def _walk(self, wanted) -> tuple[dict[str, tuple], bool]:
        """Every regular file (path -> stat key), hashing those ``wanted(path, key)`` asks for."""
        found: dict[str, tuple] = {}
        for dirpath, dirnames, filenames, dirfd in os.fwalk(self.root, follow_symlinks=False):
            base = "" if dirpath == str(self.root) else os.path.relpath(dirpath, self.root) + "/"
            dirnames[:] = sorted(d for d in dirnames if base + d not in self.skip)
            for name in sorted(filenames):
                try:
                    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                rel, key = base + name, (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                found[rel] = key
                changed = self.hashes.get(rel, (None,))[0] != key
                if changed and wanted(rel, key) and (digest := _hash_at(dirfd, name, key)):
                    self.hashes[rel] = (key, digest)
                if len(found) >= MAX_FILES:
                    return found, True
        return found, False


def tree_sha256(files: dict[str, dict]) -> str | None:
    """The sha256 of a folder's ``sha256sum`` listing (sorted by path); None if a file has no hash."""
    if any(e["sha256"] is None for e in files.values()):
        return None
    return hashlib.sha256("".join(f"{files[p]['sha256']}  {p}\n" for p in sorted(files)).encode()).hexdigest()


def _hash_at(dirfd: int, name: str, key: tuple) -> str | None:
    """sha256 of a regular file, opened without following links or blocking (a FIFO swapped in)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
    except OSError:
        return None
    try:
        st, h = os.fstat(fd), hashlib.sha256()
        if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_ino) != (key[0], key[3]):
            return None  # changed under us: no hash rather than a wrong one
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


def _remote_artefact(sandbox, artefact: str) -> dict:
    """A workspace on another machine (a remote Docker Engine): copy the artefact out once and hash it."""
    scratch = Path(tempfile.mkdtemp(prefix="mlgym-hash-"))
    try:
        try:
            sandbox.copy_out(os.path.join(sandbox.workdir, artefact), scratch / "a")
        except Exception:  # missing or refused: the evaluation says why
            return {"path": artefact, "sha256": None, "size": None, "missing": True}
        files = {("" if p == scratch / "a" else p.relative_to(scratch / "a").as_posix()):
                 {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "size": p.stat().st_size}
                 for p in [scratch / "a", *sorted((scratch / "a").rglob("*"))] if p.is_file()}
        if "" in files:
            return {"path": artefact, **files[""]}
        return {"path": artefact, "sha256": tree_sha256(files), "size": sum(e["size"] for e in files.values()),
                "files": files}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
