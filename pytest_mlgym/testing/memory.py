"""How much this process's resident memory grew while a block ran (a check that a copy streams)."""
from __future__ import annotations

import os
import resource
import threading
from pathlib import Path
from typing import Self


def rss() -> int:
    """This process's resident set size now, in bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """``with PeakRSS() as mem: ...`` then ``mem.grown``: bytes the resident memory grew by, the
    larger of a /proc sample taken every millisecond (ru_maxrss alone misses growth below an
    earlier peak) and ru_maxrss's growth."""

    grown: int

    def __enter__(self) -> Self:
        self.base, self._max0, self._stop = rss(), self._maxrss(), threading.Event()
        self.peak = self.base
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _maxrss() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.grown = max(max(self.peak, rss()) - self.base, self._maxrss() - self._max0)
