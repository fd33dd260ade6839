"""Live progress: one terminal line per step of every running episode (``-v`` or ``--mlgym-live``).

An episode calls its ``on_step`` callback after each step; the line it makes reads
``tiny oracle s0 step 2/50 best 9 | echo 9 > answer.txt`` (task, agent, seed, step/max steps, best
score so far, the action shortened to its first line). The action is the agent's text: every
control and format character in it (escape sequences, carriage returns, bidi overrides) is shown
escaped (``text.clean``), so it cannot move the cursor, clear the screen or set the title.

* Without xdist the test runs in the pytest process: the line is written at once through the
  terminal reporter, with output capture suspended (as pytest's live logging does).
* Under xdist a worker cannot reach the terminal (its output is captured and sent with the test's
  report, at the end). Each worker appends its lines to its own file,
  ``<report dir>/live/<session>/<worker>.log`` (one writer per file: no lock, no interleaving,
  one flushed ``write`` per step). The controller reads the new lines of every file from a
  background thread every 0.2 s and writes them through the terminal reporter, prefixed with the
  worker id. Its terminal writes are serialised by one lock, which the controller also holds
  while pytest writes a test's status line (hook wrappers on logstart/logreport/logfinish); before
  a test's result is written the files are read once more, so an episode's step lines always
  come before its PASSED/FAILED line. The folder is removed at the end of the session.

xdist offers no channel from a worker to the controller's terminal mid-test (its events are
fixed; reports arrive only at the end of a test phase), and writing to the controller's stderr
from a worker would garble its lines; a file per worker is the simplest thing that is safe, costs
one small buffered write per step (a step runs a shell command or an evaluator, milliseconds at
least) and nothing when live progress is off (the callback is None).
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from .text import clean

ACTION_CHARS = 60
POLL_S = 0.2


def short(action: str, width: int = ACTION_CHARS) -> str:
    """The action on one line: its first line, whitespace collapsed, control characters escaped,
    cut to ``width`` with '...'."""
    lines = str(action).strip().splitlines() or [""]
    first = " ".join(lines[0].split())
    more = len(lines) > 1 or len(first) > width
    text = clean(first[:width])  # (an escape is longer than its character: cut after cleaning too)
    if len(text) > width or more:
        text = text[:width - 3].rstrip() + "..."
    return text


def fmt_score(x) -> str:
    return "-" if x is None else f"{x:.4g}"


def line(task: str, agent: str, seed: int, step: int, max_steps: int, best, action: str) -> str:
    return clean(f"{task} {agent} s{seed} step {step}/{max_steps} best {fmt_score(best)}") + f" | {short(action)}"


class FileWriter:
    """Worker side: appends lines to this worker's file, one flushed write per line."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None

    def __call__(self, text: str) -> None:
        try:
            if self.fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(self.fd, (text.replace("\n", " ") + "\n").encode("utf-8", "replace"))
        except OSError:  # progress is best effort; the run goes on
            pass

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Printer:
    """Controller side: writes step lines through the terminal reporter.

    ``direct(text)`` is for episodes of this process (no xdist); ``watch(folder)`` starts the thread
    that tails the workers' files. Registered as a plugin so that pytest's own status lines and the
    step lines never interleave mid-line.
    """

    def __init__(self, config: pytest.Config):
        self.config = config
        self.lock = threading.Lock()
        self.folder: Path | None = None
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, bytes] = {}
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def tr(self):
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def write(self, text: str) -> None:
        if (tr := self.tr) is None:  # none with -p no:terminal
            return
        tw = getattr(tr, "_tw", None)
        if tw is not None and not getattr(tr, "currentfspath", None) and tw.width_of_current_line:
            tw.line()  # after progress dots: write_line would go on the same line
        tr.write_line(clean(text))  # also what a worker's file holds

    # -- in-process episodes
    def direct(self, text: str) -> None:
        capman = self.config.pluginmanager.getplugin("capturemanager")
        with self.lock:
            if capman is not None:
                with capman.global_and_fixture_disabled():
                    self.write(text)
            else:
                self.write(text)

    # -- xdist workers' files
    def watch(self, folder: Path) -> None:
        if self.thread is not None:
            return
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.thread = threading.Thread(target=self._loop, name="mlgym-live", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop_event.wait(POLL_S):
            try:
                self.drain()
            except Exception:  # never let the display thread take the run down
                pass

    def drain(self) -> None:
        """Write every complete line the workers appended since the last call."""
        if self.folder is None:
            return
        with self.lock:
            try:
                files = sorted(p for p in self.folder.iterdir() if p.suffix == ".log")
            except OSError:
                return
            for path in files:
                try:
                    with open(path, "rb") as f:
                        f.seek(self.offsets.get(path, 0))
                        data = f.read()
                except OSError:
                    continue
                if not data:
                    continue
                self.offsets[path] = self.offsets.get(path, 0) + len(data)
                data = self.partial.pop(path, b"") + data
                *done, rest = data.split(b"\n")
                if rest:
                    self.partial[path] = rest
                for raw in done:
                    self.write(f"[{path.stem}] {raw.decode('utf-8', 'replace')}")

    def stop(self) -> None:
        """Stop the thread, write what is left, remove the workers' files."""
        if self.thread is not None:
            self.stop_event.set()
            self.thread.join(timeout=5)
            self.thread = None
            self.drain()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            try:
                self.folder.parent.rmdir()  # <report dir>/live, when no other session uses it
            except OSError:
                pass
            self.folder = None

    # -- hold the lock while pytest writes a test's line; the workers' lines for a test come first
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report):
        self.drain()
        with self.lock:
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logstart(self, nodeid, location):
        with self.lock:
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logfinish(self, nodeid, location):
        with self.lock:
            return (yield)
