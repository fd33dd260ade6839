"""The agent-computer interface: the commands an agent may call, and parsing.

An action is text. Its first word names a tool (``open``, ``edit``, ...); anything else is a
shell command for the sandbox's persistent bash. Block tools (``create``, ``edit``, ``insert``)
take the lines after the first one as their text, up to an optional ``end_of_<tool>`` line.
``validate`` and ``submit`` are the env's, not the toolbox's: they involve trusted evaluation.
Each result is an :class:`~pytest_mlgym.observation.Observation` with a
:class:`~pytest_mlgym.observation.ToolResult` (the open file's window, for a file view). The docs
and function schemas are generated in :mod:`pytest_mlgym.tooldocs`; refusing interactive programs
is :mod:`pytest_mlgym.interactive`'s.
"""
from __future__ import annotations

import dataclasses
import posixpath
import shlex
from dataclasses import dataclass
from typing import Callable

from .interactive import INTERACTIVE as INTERACTIVE, refuse_interactive as refuse_interactive  # re-exported
from .observation import Observation, ToolResult, say
from .pysyntax import SyntaxCache
from .sandbox import Sandbox, SandboxError

WINDOW = 1000  # lines shown by `open`
MAX_LINE = 2000  # a longer line is cut in file views
MAX_HITS = 100  # search results shown
MAX_OPEN_BYTES = 20 << 20


@dataclass(frozen=True)
class Tool:
    name: str
    usage: str
    doc: str
    run: Callable[["ToolBox", list[str], str | None], str]
    block: bool = False  # takes the following lines as text


TOOLS: dict[str, Tool] = {}
ENV_COMMANDS = {
    "validate": ("validate", "Score the current artefact on the hidden dev split (the test split is sealed); "
                             "the episode goes on."),
    "submit": ("submit", "Score the artefact and end the episode. The last scored artefact is your result."),
}


def tool(name: str, usage: str, doc: str, block: bool = False):
    def register(fn):
        TOOLS[name] = Tool(name, usage, doc, fn, block)
        return fn
    return register


class ToolError(Exception):
    """Shown to the agent as the observation; never ends the episode."""


class EditRefused(ToolError):
    """An edit that was not written (it broke a Python file's syntax); the message is the whole text."""


def __getattr__(name: str):
    """``docs``, ``schemas`` and ``action_from_call`` are :mod:`pytest_mlgym.tooldocs`'s (which imports
    this module's registry, so they are looked up there when first asked for here)."""
    if name in ("docs", "schemas", "action_from_call", "INT_ARGS"):
        from . import tooldocs
        return getattr(tooldocs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ToolBox:
    """Tool state for one episode: the open file and the first line of its window."""

    def __init__(self, sandbox: Sandbox, timeout: float, window: int = WINDOW):
        self.sandbox, self.timeout, self.window = sandbox, timeout, window
        self.file: str | None = None
        self.top = 1
        self.syntax = SyntaxCache()
        self.shown: ToolResult | None = None  # the last file view of the running command

    def handles(self, action: str) -> bool:
        return _first_word(action) in TOOLS

    def run(self, action: str) -> Observation:
        first, _, rest = action.strip().partition("\n")
        try:
            words = shlex.split(first)
        except ValueError as e:
            return Observation(say("unparsable", error=e), (ToolResult(_first_word(action), ok=False),))
        t = TOOLS[words[0]]
        body = _block(rest, t.name) if t.block else None
        if not t.block and rest.strip():
            return Observation(say("no_text", tool=t.name, usage=t.usage), (ToolResult(t.name, ok=False),))
        self.shown = None
        try:
            text, ok = t.run(self, words[1:], body), True
        except EditRefused as e:
            text, ok = str(e), False
        except (ToolError, SandboxError) as e:
            text, ok = say("tool_error", error=e, usage=t.usage), False
        view = self.shown if ok and self.shown else ToolResult(t.name, ok)
        return Observation(text, (dataclasses.replace(view, tool=t.name, ok=ok),))

    # -- helpers used by the tools -----------------------------------------------------------
    def lines(self, path: str) -> list[str]:
        """The file's lines, split at "\\n" only, so that writing them back changes nothing else:
        \\r, form feeds and U+2028 stay inside their lines; bytes that are not UTF-8 survive as
        surrogates (``surrogateescape``) and are written back as they were."""
        text = self.sandbox.read_file(path, MAX_OPEN_BYTES).decode("utf-8", "surrogateescape")
        return _split(text)

    def abspath(self, path: str) -> str:
        """``path`` made absolute against the shell's current folder, so a later ``cd`` does not
        change which file is open."""
        if posixpath.isabs(path):
            return posixpath.normpath(path)
        res = self.sandbox.exec("builtin pwd", self.timeout)
        out = res.output.strip().splitlines()
        cwd = out[-1] if res.returncode == 0 and out and posixpath.isabs(out[-1]) else self.sandbox.workdir
        return posixpath.normpath(posixpath.join(cwd, path))

    def exists(self, path: str) -> bool:
        res = self.sandbox.exec(f"test -e {shlex.quote(path)} || test -L {shlex.quote(path)}", self.timeout)
        return res.returncode != 1

    def need_file(self) -> str:
        if self.file is None:
            raise ToolError("no file is open; use `open <path>` first")
        return self.file

    def view(self) -> str:
        lines = self.lines(self.need_file())
        n = len(lines)
        self.top = max(1, min(self.top, max(1, n - self.window + 1)))
        end = min(n, self.top + self.window - 1)
        out = [say("view_header", file=self.file, total=n)]
        if self.top > 1:
            out.append(say("view_above", count=self.top - 1))
        window: list[str] = []
        if end >= self.top:  # one decode for the whole window
            window = [_cut(line) for line in _shown("\n".join(lines[self.top - 1:end])).split("\n")]
            out += [say("view_line", number=i, line=line) for i, line in enumerate(window, self.top)]
        if end < n:
            out.append(say("view_below", count=n - end))
        self.shown = ToolResult("", True, self.file, self.top, end, n, tuple(window))
        return "\n".join(out)

    def write_checked(self, path: str, text: str, old: list[str] | None = None,
                      span: tuple[int, int, int] = (1, 0, 0)) -> None:
        """Write ``text`` unless it breaks a Python file's syntax (then raise :class:`EditRefused`).
        ``old``: the file's lines before an edit that replaced ``span[1]`` lines from line ``span[0]``
        by ``span[2]`` lines (only those statements are compiled again when the file was known good)."""
        data = text.encode("utf-8", "surrogateescape")
        if path.endswith(".py"):
            before = _join(old).encode("utf-8", "surrogateescape") if old is not None else None
            was = say("kept") if old is not None else say("not_created")
            try:  # compiled as bytes, as Python will read the file (coding cookies included)
                self.syntax.check(path, data, before, *span)
            except RecursionError:
                raise EditRefused(say("too_nested", was=was, path=path)) from None
            except (SyntaxError, ValueError) as e:
                where = f"{path}:{lineno}" if (lineno := getattr(e, "lineno", None)) else path
                code = _shown(getattr(e, "text", None) or "").rstrip()
                raise EditRefused(say("syntax_error", was=was, where=where, message=getattr(e, "msg", None) or e,
                                      code=code)) from None
        self.sandbox.write_file(path, data)

    def sh(self, cmd: str) -> str:
        res = self.sandbox.exec(cmd, self.timeout)
        return res.output


def _first_word(action: str) -> str:
    first = action.strip().split("\n", 1)[0].split()
    return first[0] if first else ""


def _block(rest: str, name: str) -> str:
    lines = rest.split("\n")
    end = f"end_of_{name}"
    stripped = [line.strip() for line in lines]
    if end in stripped:
        lines = lines[:stripped.index(end)]
    text = "\n".join(lines)
    return text + "\n" if text and not text.endswith("\n") else text


def _split(text: str) -> list[str]:
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _join(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def _shown(text: str) -> str:
    """Text fit to show: bytes that are not UTF-8 appear as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE else say("line_cut", line=line[:MAX_LINE], count=len(line) - MAX_LINE)


def _int(word: str, what: str) -> int:
    try:
        return int(word)
    except ValueError:
        raise ToolError(f"{what} must be a whole number, got {word!r}") from None


# -- file viewer ------------------------------------------------------------------------------
@tool("open", "open <path> [<line>]", f"Open a file in a {WINDOW}-line window, starting near <line>.")
def _open(tb: ToolBox, args, _):
    if not args or len(args) > 2:
        raise ToolError("give a path and optionally a line number")
    path = tb.abspath(args[0])
    tb.lines(path)  # fails early with a clear message if unreadable
    tb.file = path
    tb.top = max(1, _int(args[1], "line") - tb.window // 2) if len(args) == 2 else 1
    return tb.view()


@tool("goto", "goto <line>", "Move the window of the open file so that it shows <line>.")
def _goto(tb: ToolBox, args, _):
    if len(args) != 1:
        raise ToolError("give one line number")
    tb.need_file()
    tb.top = max(1, _int(args[0], "line") - tb.window // 2)
    return tb.view()


@tool("scroll_down", "scroll_down", "Move the window of the open file down by one window.")
def _down(tb: ToolBox, args, _):
    return _scroll(tb, args, +1)


@tool("scroll_up", "scroll_up", "Move the window of the open file up by one window.")
def _up(tb: ToolBox, args, _):
    return _scroll(tb, args, -1)


def _scroll(tb: ToolBox, args, windows: int) -> str:
    if args:
        raise ToolError("takes no arguments; it moves by one window")
    tb.need_file()
    tb.top = max(1, tb.top + windows * tb.window)
    return tb.view()


# -- editing ----------------------------------------------------------------------------------
@tool("create", "create <path>\\n<text>\\nend_of_create",
      "Create a file (with the given text, or empty) and open it. Refuses to overwrite.", block=True)
def _create(tb: ToolBox, args, body):
    if len(args) != 1:
        raise ToolError("give one path")
    path = tb.abspath(args[0])
    if tb.exists(path):
        raise ToolError(f"{args[0]} already exists; use `open` and `edit` to change it")
    tb.write_checked(path, body or "")
    tb.file, tb.top = path, 1
    return say("created", path=path, view=tb.view())


@tool("edit", "edit <start>:<end>\\n<replacement text>\\nend_of_edit",
      "Replace lines <start> to <end> (inclusive) of the open file with the text; no text deletes them. "
      "An edit that breaks a Python file's syntax is rolled back.", block=True)
def _edit(tb: ToolBox, args, body):
    if len(args) != 1 or ":" not in args[0]:
        raise ToolError("give a line range like 5:7")
    a, b = args[0].split(":", 1)
    start, end = _int(a, "start"), _int(b, "end")
    path = tb.need_file()
    lines = tb.lines(path)
    if not (1 <= start <= end + 1 and end <= len(lines)):
        raise ToolError(f"range {start}:{end} is outside the file (1-{len(lines)})")
    text = _split(body or "")
    new = lines[:start - 1] + text + lines[end:]
    tb.write_checked(path, _join(new), lines, (start, end - start + 1, len(text)))
    tb.top = max(1, start - tb.window // 2)
    return say("edited", path=path, start=start, end=end, count=len(text), view=tb.view())


@tool("insert", "insert <line>\\n<text>\\nend_of_insert",
      "Insert the text after line <line> of the open file (0 inserts at the top).", block=True)
def _insert(tb: ToolBox, args, body):
    if len(args) != 1:
        raise ToolError("give one line number")
    at = _int(args[0], "line")
    path = tb.need_file()
    lines = tb.lines(path)
    if not 0 <= at <= len(lines):
        raise ToolError(f"line {at} is outside the file (0-{len(lines)})")
    text = _split(body or "")
    new = lines[:at] + text + lines[at:]
    tb.write_checked(path, _join(new), lines, (at + 1, 0, len(text)))
    tb.top = max(1, at - tb.window // 2)
    return say("inserted", count=len(text), at=at, path=path, view=tb.view())


# -- searching (run in the sandbox, so they see exactly what the agent's shell sees) ------------
def _hits(out: str, program: str) -> list[str]:
    """The result lines of a search; if there are none, the program's complaints are the error."""
    lines = [line for line in out.splitlines() if line.strip()]
    hits = [line for line in lines if not line.startswith(f"{program}: ")]
    if not hits and len(hits) < len(lines):
        raise ToolError("; ".join(line.removeprefix(f"{program}: ") for line in lines[:3]))
    return hits


def _listing(hits: list[str], kind: str, unit: str, **fields: str) -> str:
    """The hits under the title ``<kind>_hits`` (at most MAX_HITS, saying so), or ``<kind>_none``."""
    if not hits:
        return say(f"{kind}_none", **fields)
    listing = say("listing", title=say(f"{kind}_hits", **fields), hits="\n".join(hits[:MAX_HITS]))
    return say("listing_more", listing=listing, max=MAX_HITS, unit=unit) if len(hits) > MAX_HITS else listing


def _what_and_where(args: list[str], usage: str, default: Callable[[], str]) -> tuple[str, str]:
    """The two arguments of a search (what, and where: ``default()`` when not given)."""
    if not 1 <= len(args) <= 2:
        raise ToolError(usage)
    return args[0], args[1] if len(args) == 2 else default()


@tool("search_dir", "search_dir <text> [<dir>]", "List the files under <dir> (default: .) containing <text>.")
def _search_dir(tb: ToolBox, args, _):
    text, where = _what_and_where(args, "give the text and optionally a folder", lambda: ".")
    out = tb.sh(f"grep -rIcF --exclude-dir=.git -e {shlex.quote(text)} -- {shlex.quote(where)} 2>&1 "
                f"| grep -v ':0$' | head -n {MAX_HITS + 1}")
    return _listing(_hits(out, "grep"), "dir", "files", text=text, where=where)


@tool("search_file", "search_file <text> [<path>]",
      "Show the lines of <path> (default: the open file) containing <text>.")
def _search_file(tb: ToolBox, args, _):
    text, path = _what_and_where(args, "give the text and optionally a file", tb.need_file)
    out = tb.sh(f"grep -nF -e {shlex.quote(text)} -- {shlex.quote(path)} 2>&1 | head -n {MAX_HITS + 1}")
    return _listing([_cut(hit) for hit in _hits(out, "grep")], "file", "matches", text=text, path=path)


@tool("find_file", "find_file <name> [<dir>]", "Find files named <name> (wildcards allowed) under <dir> (default: .).")
def _find_file(tb: ToolBox, args, _):
    name, where = _what_and_where(args, "give a file name and optionally a folder", lambda: ".")
    out = tb.sh(f"find {shlex.quote(where)} -name {shlex.quote(name)} -not -path '*/.git/*' 2>&1 "
                f"| head -n {MAX_HITS + 1}")
    return _listing(_hits(out, "find"), "find", "files", name=name, where=where)
