"""Copying an artefact out of a sandbox in bounded memory: chunk by chunk, holes kept (a sparse
file stays sparse on the host), within a byte budget on its apparent size; what a refused copy
made is removed. Used by the local backend and by the docker backend's archive path."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

CHUNK = 1 << 20  # copy-out streams in chunks of this size: the harness never holds a whole artefact
_ZERO = bytes(CHUNK)


def too_big(src: str, size: int, limit: int) -> str:
    return f"{src}: {size} bytes (apparent size), over the limit of {limit} bytes ({limit >> 20} MB)"


def apparent(path: str) -> int:
    """The apparent size (holes count) of the regular file ``path``; 0 for anything else (refused when opened)."""
    try:
        st = os.stat(path)
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def stream(read, out: int, budget: int) -> int:
    """Copy ``read(n)`` chunks to the descriptor ``out`` until EOF, seeking over all-zero chunks (a
    hole stays a hole) and setting the length at the end; the bytes copied, or -1 as soon as more
    than ``budget`` came (nothing past the budget is written)."""
    total = 0
    while chunk := read(min(CHUNK, budget - total + 1)):
        total += len(chunk)
        if total > budget:
            return -1
        if chunk == (_ZERO if len(chunk) == CHUNK else _ZERO[:len(chunk)]):
            os.lseek(out, len(chunk), os.SEEK_CUR)
            continue
        view = memoryview(chunk)
        while view:
            view = view[os.write(out, view):]
    os.ftruncate(out, total)
    return total


def discard(dest: Path, written: list[Path], existed: bool) -> None:
    """Remove what a refused copy made: ``dest`` if it is new, else the files written into it."""
    for t in written if existed else [dest]:
        shutil.rmtree(t, ignore_errors=True) if t.is_dir() and not t.is_symlink() else t.unlink(missing_ok=True)
