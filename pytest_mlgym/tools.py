"""The agent-computer interface: the commands an agent may call, their docs, and parsing.

An action is text. Its first word names a tool (``open``, ``edit``, ...); anything else is a
shell command for the sandbox's persistent bash. Block tools (``create``, ``edit``, ``insert``)
take the lines after the first one as their text, up to an optional ``end_of_<tool>`` line.
``validate`` and ``submit`` are the env's, not the toolbox's: they involve trusted evaluation.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Callable

from .sandbox import Sandbox, SandboxError

WINDOW = 1000  # lines shown by `open`
MAX_LINE = 2000  # a longer line is cut in file views
MAX_HITS = 100  # search results shown
MAX_OPEN_BYTES = 20 << 20

INTERACTIVE = {"vim", "vi", "nvim", "nano", "emacs", "pico", "less", "more", "man", "top", "htop", "watch",
               "ssh", "ftp", "telnet", "git", "ipython", "jupyter", "screen", "tmux", "tail -f"}
PYTHONS = re.compile(r"^python(\d+(\.\d+)?)?$")


@dataclass(frozen=True)
class Tool:
    name: str
    usage: str
    doc: str
    run: Callable[["ToolBox", list[str], str | None], str]
    block: bool = False  # takes the following lines as text


TOOLS: dict[str, Tool] = {}
ENV_COMMANDS = {
    "validate": ("validate", "Score the current artefact on the hidden test data; the episode goes on."),
    "submit": ("submit", "Score the artefact and end the episode. The last scored artefact is your result."),
}


def tool(name: str, usage: str, doc: str, block: bool = False):
    def register(fn):
        TOOLS[name] = Tool(name, usage, doc, fn, block)
        return fn
    return register


class ToolError(Exception):
    """Shown to the agent as the observation; never ends the episode."""


class ToolBox:
    """Tool state for one episode: the open file and the first line of its window."""

    def __init__(self, sandbox: Sandbox, timeout: float, window: int = WINDOW):
        self.sandbox, self.timeout, self.window = sandbox, timeout, window
        self.file: str | None = None
        self.top = 1

    def handles(self, action: str) -> bool:
        return _first_word(action) in TOOLS

    def run(self, action: str) -> str:
        first, _, rest = action.strip().partition("\n")
        try:
            words = shlex.split(first)
        except ValueError as e:
            return f"Could not parse the command line: {e}"
        t = TOOLS[words[0]]
        body = _block(rest, t.name) if t.block else None
        if not t.block and rest.strip():
            return f"`{t.name}` takes no text after its first line. Usage: {t.usage}"
        try:
            return t.run(self, words[1:], body)
        except (ToolError, SandboxError) as e:
            return f"Error: {e}\nUsage: {t.usage}"

    # -- helpers used by the tools -----------------------------------------------------------
    def lines(self, path: str) -> list[str]:
        return self.sandbox.read_file(path, MAX_OPEN_BYTES).decode(errors="replace").splitlines()

    def need_file(self) -> str:
        if self.file is None:
            raise ToolError("no file is open; use `open <path>` first")
        return self.file

    def view(self) -> str:
        lines = self.lines(self.need_file())
        n = len(lines)
        self.top = max(1, min(self.top, max(1, n - self.window + 1)))
        end = min(n, self.top + self.window - 1)
        out = [f"[File: {self.file} ({n} lines total)]"]
        if self.top > 1:
            out.append(f"({self.top - 1} more lines above)")
        out += [f"{i}:{_cut(lines[i - 1])}" for i in range(self.top, end + 1)]
        if end < n:
            out.append(f"({n - end} more lines below)")
        return "\n".join(out)

    def write_checked(self, path: str, text: str, old: str | None) -> str | None:
        """Write ``text`` unless it breaks a Python file's syntax; return the error if it does."""
        if path.endswith(".py"):
            try:
                compile(text, path, "exec")
            except SyntaxError as e:
                was = "the file was left as it was" if old is not None else "the file was not created"
                return (f"Your edit was rolled back ({was}): it introduces a syntax error:\n"
                        f"  {path}:{e.lineno}: {e.msg}\n  {(e.text or '').rstrip()}\nFix it and try again.")
        self.sandbox.write_file(path, text.encode())
        return None

    def sh(self, cmd: str) -> str:
        res = self.sandbox.exec(cmd, self.timeout)
        return res.output


def _first_word(action: str) -> str:
    first = action.strip().split("\n", 1)[0].split()
    return first[0] if first else ""


def _block(rest: str, name: str) -> str:
    lines = rest.split("\n")
    end = f"end_of_{name}"
    if end in (l.strip() for l in lines):
        lines = lines[:[l.strip() for l in lines].index(end)]
    text = "\n".join(lines)
    return text + "\n" if text and not text.endswith("\n") else text


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[:MAX_LINE] + f" [... {len(line) - MAX_LINE} characters cut]"


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
    tb.lines(args[0])  # fails early with a clear message if unreadable
    tb.file = args[0]
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
    tb.need_file()
    tb.top += tb.window
    return tb.view()


@tool("scroll_up", "scroll_up", "Move the window of the open file up by one window.")
def _up(tb: ToolBox, args, _):
    tb.need_file()
    tb.top = max(1, tb.top - tb.window)
    return tb.view()


# -- editing ----------------------------------------------------------------------------------
@tool("create", "create <path>\\n<text>\\nend_of_create",
      "Create a file (with the given text, or empty) and open it. Refuses to overwrite.", block=True)
def _create(tb: ToolBox, args, body):
    if len(args) != 1:
        raise ToolError("give one path")
    try:
        tb.sandbox.read_file(args[0], 0)
        raise ToolError(f"{args[0]} already exists; use `open` and `edit` to change it")
    except SandboxError:
        pass
    if err := tb.write_checked(args[0], body or "", None):
        return err
    tb.file, tb.top = args[0], 1
    return f"Created {args[0]}.\n" + tb.view()


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
    new = lines[:start - 1] + (body or "").splitlines() + lines[end:]
    if err := tb.write_checked(path, "\n".join(new) + "\n", "\n".join(lines)):
        return err
    tb.top = max(1, start - tb.window // 2)
    return f"Edited {path}: lines {start}-{end} replaced by {len((body or '').splitlines())} lines.\n" + tb.view()


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
    new = lines[:at] + (body or "").splitlines() + lines[at:]
    if err := tb.write_checked(path, "\n".join(new) + "\n", "\n".join(lines)):
        return err
    tb.top = max(1, at - tb.window // 2)
    return f"Inserted {len((body or '').splitlines())} lines after line {at} of {path}.\n" + tb.view()


# -- searching (run in the sandbox, so they see exactly what the agent's shell sees) ------------
@tool("search_dir", "search_dir <text> [<dir>]", "List the files under <dir> (default: .) containing <text>.")
def _search_dir(tb: ToolBox, args, _):
    if not 1 <= len(args) <= 2:
        raise ToolError("give the text and optionally a folder")
    text, where = args[0], args[1] if len(args) == 2 else "."
    out = tb.sh(f"grep -rIcF --exclude-dir=.git -e {shlex.quote(text)} -- {shlex.quote(where)} 2>&1 "
                f"| grep -v ':0$' | head -n {MAX_HITS + 1}")
    hits = [l for l in out.splitlines() if l.strip()]
    if not hits:
        return f'No matches for "{text}" in {where}'
    more = f"\n(more than {MAX_HITS} files; narrow the search)" if len(hits) > MAX_HITS else ""
    return f'Files containing "{text}" in {where} (file:matches):\n' + "\n".join(hits[:MAX_HITS]) + more


@tool("search_file", "search_file <text> [<path>]", "Show the lines of <path> (default: the open file) containing <text>.")
def _search_file(tb: ToolBox, args, _):
    if not 1 <= len(args) <= 2:
        raise ToolError("give the text and optionally a file")
    text, path = args[0], args[1] if len(args) == 2 else tb.need_file()
    out = tb.sh(f"grep -nF -e {shlex.quote(text)} -- {shlex.quote(path)} 2>&1 | head -n {MAX_HITS + 1}")
    hits = [_cut(l) for l in out.splitlines() if l.strip()]
    if not hits:
        return f'No matches for "{text}" in {path}'
    more = f"\n(more than {MAX_HITS} matches; narrow the search)" if len(hits) > MAX_HITS else ""
    return f'Lines containing "{text}" in {path}:\n' + "\n".join(hits[:MAX_HITS]) + more


@tool("find_file", "find_file <name> [<dir>]", "Find files named <name> (wildcards allowed) under <dir> (default: .).")
def _find_file(tb: ToolBox, args, _):
    if not 1 <= len(args) <= 2:
        raise ToolError("give a file name and optionally a folder")
    name, where = args[0], args[1] if len(args) == 2 else "."
    out = tb.sh(f"find {shlex.quote(where)} -name {shlex.quote(name)} -not -path '*/.git/*' 2>&1 "
                f"| head -n {MAX_HITS + 1}")
    hits = [l for l in out.splitlines() if l.strip()]
    if not hits:
        return f'No file named "{name}" under {where}'
    more = f"\n(more than {MAX_HITS} files; narrow the search)" if len(hits) > MAX_HITS else ""
    return f'Files named "{name}" under {where}:\n' + "\n".join(hits[:MAX_HITS]) + more


# -- shell commands -----------------------------------------------------------------------------
def refuse_interactive(cmd: str) -> str | None:
    """A message if ``cmd`` starts an interactive program (which would hang the episode)."""
    for part in re.split(r"&&|\|\||[;|&\n()]", cmd):
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        while words and (re.match(r"^\w+=", words[0]) or words[0] in ("sudo", "time", "nohup", "env", "exec")):
            words = words[1:]
        if not words:
            continue
        prog = words[0].rsplit("/", 1)[-1]
        bare_python = PYTHONS.match(prog) and (len(words) == 1 or "-i" in words[1:])
        if prog in INTERACTIVE or bare_python:
            what = "an interactive Python" if bare_python else f"`{prog}`"
            return (f"Refused: {what} would wait for a terminal that does not exist here. Use the file tools "
                    f"(open, edit, insert, create) or a non-interactive command (e.g. `python script.py`, "
                    f"`python -c '...'`).")
    return None


def docs(artefact: str, step_s: float) -> str:
    """The tool documentation shown in the agent's first observation, generated from the registry."""
    rows = [(t.usage, t.doc) for t in TOOLS.values()] + list(ENV_COMMANDS.values())
    width = max(len(u.split("\\n")[0]) for u, _ in rows)
    lines = ["COMMANDS (one per step)"]
    for usage, doc in rows:
        first, *more = usage.split("\\n")
        lines.append(f"  {first.ljust(width)}  {doc}")
        if more:
            lines.append(f"  {'':{width}}  Text goes on the following lines, ended by `{more[-1]}`.")
    lines += [
        f"  {'<anything else>'.ljust(width)}  Runs in bash in your workspace (cd and variables persist).",
        "",
        f"The artefact that is scored is `{artefact}` in the workspace. Each command may run for {step_s:g} s;",
        "longer ones are killed. Interactive programs (vim, nano, bare python, git, less) are refused.",
    ]
    return "\n".join(lines)
