"""The agent-computer interface: the commands an agent may call, their docs, and parsing.

An action is text. Its first word names a tool (``open``, ``edit``, ...); anything else is a
shell command for the sandbox's persistent bash. Block tools (``create``, ``edit``, ``insert``)
take the lines after the first one as their text, up to an optional ``end_of_<tool>`` line.
``validate`` and ``submit`` are the env's, not the toolbox's: they involve trusted evaluation.
"""
from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Callable

from .pysyntax import SyntaxCache
from .sandbox import Sandbox, SandboxError

WINDOW = 1000  # lines shown by `open`
MAX_LINE = 2000  # a longer line is cut in file views
MAX_HITS = 100  # search results shown
MAX_OPEN_BYTES = 20 << 20

INTERACTIVE = {"vim", "vi", "nvim", "nano", "emacs", "pico", "less", "more", "man", "top", "htop", "watch",
               "ssh", "ftp", "telnet", "git", "ipython", "jupyter", "screen", "tmux"}
PYTHONS = re.compile(r"^python(\d+(\.\d+)?)?$")
FOLLOW = re.compile(r"^(-[A-Za-z]*[fF][A-Za-z]*|--follow(=.*)?)$")  # `tail -f`, `tail -Fn`, `tail --follow`
# any program refuse_interactive could refuse, as a word of the command with its quotes taken out:
# a command without one (most of them) is let through without being parsed
_MAYBE_INTERACTIVE = re.compile(rf"(?<![\w.-])(?:{'|'.join(sorted(INTERACTIVE))}|tail|python[\d.]*)(?![\w.-])")
_UNQUOTE = str.maketrans("", "", "'\"\\")


@dataclass(frozen=True)
class Tool:
    name: str
    usage: str
    doc: str
    run: Callable[["ToolBox", list[str], str | None], str]
    block: bool = False  # takes the following lines as text


TOOLS: dict[str, Tool] = {}
ENV_COMMANDS = {
    "validate": ("validate", "Score the current artefact on the hidden dev split (the test split is sealed); the episode goes on."),
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
        self.syntax = SyntaxCache()

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
        out = [f"[File: {self.file} ({n} lines total)]"]
        if self.top > 1:
            out.append(f"({self.top - 1} more lines above)")
        if end >= self.top:  # one decode for the whole window
            shown = _shown("\n".join(lines[self.top - 1:end])).split("\n")
            out += [f"{i}:{_cut(line)}" for i, line in enumerate(shown, self.top)]
        if end < n:
            out.append(f"({n - end} more lines below)")
        return "\n".join(out)

    def write_checked(self, path: str, text: str, old: list[str] | None = None,
                      span: tuple[int, int, int] = (1, 0, 0)) -> str | None:
        """Write ``text`` unless it breaks a Python file's syntax; return the error if it does.
        ``old``: the file's lines before an edit that replaced ``span[1]`` lines from line ``span[0]``
        by ``span[2]`` lines (only those statements are compiled again when the file was known good)."""
        data = text.encode("utf-8", "surrogateescape")
        if path.endswith(".py"):
            before = _join(old).encode("utf-8", "surrogateescape") if old is not None else None
            was = "the file was left as it was" if old is not None else "the file was not created"
            try:  # compiled as bytes, as Python will read the file (coding cookies included)
                self.syntax.check(path, data, before, *span)
            except RecursionError:
                return f"Your edit was rolled back ({was}): {path} is nested too deeply for Python to compile."
            except (SyntaxError, ValueError) as e:
                where = f"{path}:{e.lineno}" if getattr(e, "lineno", None) else path
                code = _shown(getattr(e, "text", None) or "").rstrip()
                return (f"Your edit was rolled back ({was}): it introduces a syntax error:\n"
                        f"  {where}: {getattr(e, 'msg', None) or e}\n  {code}\nFix it and try again.")
        self.sandbox.write_file(path, data)
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


def _split(text: str) -> list[str]:
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _join(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def _shown(text: str) -> str:
    """Text fit to show: bytes that are not UTF-8 appear as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


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
    if args:
        raise ToolError("takes no arguments; it moves by one window")
    tb.need_file()
    tb.top += tb.window
    return tb.view()


@tool("scroll_up", "scroll_up", "Move the window of the open file up by one window.")
def _up(tb: ToolBox, args, _):
    if args:
        raise ToolError("takes no arguments; it moves by one window")
    tb.need_file()
    tb.top = max(1, tb.top - tb.window)
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
    if err := tb.write_checked(path, body or ""):
        return err
    tb.file, tb.top = path, 1
    return f"Created {path}.\n" + tb.view()


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
    if err := tb.write_checked(path, _join(new), lines, (start, end - start + 1, len(text))):
        return err
    tb.top = max(1, start - tb.window // 2)
    return f"Edited {path}: lines {start}-{end} replaced by {len(text)} lines.\n" + tb.view()


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
    if err := tb.write_checked(path, _join(new), lines, (at + 1, 0, len(text))):
        return err
    tb.top = max(1, at - tb.window // 2)
    return f"Inserted {len(text)} lines after line {at} of {path}.\n" + tb.view()


# -- searching (run in the sandbox, so they see exactly what the agent's shell sees) ------------
def _hits(out: str, program: str) -> list[str]:
    """The result lines of a search; if there are none, the program's complaints are the error."""
    lines = [l for l in out.splitlines() if l.strip()]
    hits = [l for l in lines if not l.startswith(f"{program}: ")]
    if not hits and len(hits) < len(lines):
        raise ToolError("; ".join(l.removeprefix(f"{program}: ") for l in lines[:3]))
    return hits


def _listing(hits: list[str], title: str, empty: str, unit: str) -> str:
    if not hits:
        return empty
    more = f"\n(more than {MAX_HITS} {unit}; narrow the search)" if len(hits) > MAX_HITS else ""
    return f"{title}:\n" + "\n".join(hits[:MAX_HITS]) + more


@tool("search_dir", "search_dir <text> [<dir>]", "List the files under <dir> (default: .) containing <text>.")
def _search_dir(tb: ToolBox, args, _):
    if not 1 <= len(args) <= 2:
        raise ToolError("give the text and optionally a folder")
    text, where = args[0], args[1] if len(args) == 2 else "."
    out = tb.sh(f"grep -rIcF --exclude-dir=.git -e {shlex.quote(text)} -- {shlex.quote(where)} 2>&1 "
                f"| grep -v ':0$' | head -n {MAX_HITS + 1}")
    return _listing(_hits(out, "grep"), f'Files containing "{text}" in {where} (file:matches)',
                    f'No matches for "{text}" in {where}', "files")


@tool("search_file", "search_file <text> [<path>]", "Show the lines of <path> (default: the open file) containing <text>.")
def _search_file(tb: ToolBox, args, _):
    if not 1 <= len(args) <= 2:
        raise ToolError("give the text and optionally a file")
    text, path = args[0], args[1] if len(args) == 2 else tb.need_file()
    out = tb.sh(f"grep -nF -e {shlex.quote(text)} -- {shlex.quote(path)} 2>&1 | head -n {MAX_HITS + 1}")
    return _listing([_cut(l) for l in _hits(out, "grep")], f'Lines containing "{text}" in {path}',
                    f'No matches for "{text}" in {path}', "matches")


@tool("find_file", "find_file <name> [<dir>]", "Find files named <name> (wildcards allowed) under <dir> (default: .).")
def _find_file(tb: ToolBox, args, _):
    if not 1 <= len(args) <= 2:
        raise ToolError("give a file name and optionally a folder")
    name, where = args[0], args[1] if len(args) == 2 else "."
    out = tb.sh(f"find {shlex.quote(where)} -name {shlex.quote(name)} -not -path '*/.git/*' 2>&1 "
                f"| head -n {MAX_HITS + 1}")
    return _listing(_hits(out, "find"), f'Files named "{name}" under {where}', f'No file named "{name}" under {where}',
                    "files")


# -- shell commands -----------------------------------------------------------------------------
def refuse_interactive(cmd: str) -> str | None:
    """A message if ``cmd`` starts an interactive program (which would hang the episode)."""
    return _refuse_parsed(cmd) if _MAYBE_INTERACTIVE.search(cmd.translate(_UNQUOTE)) else None


def _refuse_parsed(cmd: str) -> str | None:
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
        bare_python = bool(PYTHONS.match(prog)) and _interactive_python(words[1:])
        follows = prog == "tail" and any(FOLLOW.match(w) for w in words[1:])
        if follows:
            return "Refused: `tail -f` never ends. Show the end of the file with `tail -n 50 <file>` instead."
        if prog in INTERACTIVE or bare_python:
            what = "an interactive Python" if bare_python else f"`{prog}`"
            return (f"Refused: {what} would wait for a terminal that does not exist here. Use the file tools "
                    f"(open, edit, insert, create) or a non-interactive command (e.g. `python script.py`, "
                    f"`python -c '...'`).")
    return None


def _interactive_python(args: list[str]) -> bool:
    """Whether ``python <args>`` starts the interactive interpreter: no script, ``-c`` or ``-m``
    (or ``-i`` among the interpreter's own options). Options after the script are the script's."""
    interactive = False
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-V", "-VV", "--version", "-h", "-?", "--help", "--help-all"):
            return False
        if a == "--":
            return interactive or i + 1 >= len(args)
        if a == "-" or not a.startswith("-"):
            return interactive  # a script (or `-`: a program on stdin, not a terminal session)
        if not a.startswith("--"):
            for k, ch in enumerate(a[1:]):
                if ch == "i":
                    interactive = True
                elif ch in "cm":
                    return interactive
                elif ch in "WX":  # takes a value: the rest of this word, or the next word
                    if k == len(a) - 2:
                        i += 1
                    break
        i += 1
    return True


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


# -- the same commands as function schemas, for models with native tool calling ----------------
INT_ARGS = {"line", "start", "end"}


def schemas(extra: dict[str, tuple[str, str]] | None = None) -> list[dict]:
    """OpenAI-style function schemas of every command, generated from the registry's usage lines:
    ``<x>`` is a required argument, ``[<x>]`` an optional one, a block tool takes ``text``. Plain
    shell commands go through ``bash``; ``extra`` adds agent-side commands (name -> usage, doc)."""
    out = []
    rows = [(t.name, t.usage, t.doc, t.block) for t in TOOLS.values()]
    rows += [(name, usage, doc, False) for name, (usage, doc) in {**ENV_COMMANDS, **(extra or {})}.items()]
    for name, usage, doc, block in rows:
        props, required = {}, []
        for optional, arg in re.findall(r"(\[?)<(\w+)>", usage.split("\\n")[0]):
            props[arg] = {"type": "integer" if arg in INT_ARGS else "string"}
            if not optional:
                required.append(arg)
        if block:
            props["text"] = {"type": "string", "description": "the text (may span many lines)"}
        out.append(_function(name, doc, props, required))
    out.append(_function("bash", "Run a shell command in your workspace (cd and variables persist).",
                         {"command": {"type": "string"}}, ["command"]))
    return out


def _function(name: str, doc: str, props: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": doc, "parameters": {
        "type": "object", "properties": props, "required": required, "additionalProperties": False}}}


def action_from_call(name: str, args: dict) -> str:
    """The text action of a tool call (the inverse of :func:`schemas`); ToolError if it is malformed."""
    if name == "bash":
        if not isinstance(args.get("command"), str) or not args["command"].strip():
            raise ToolError("bash needs a non-empty `command`")
        return args["command"]
    if name in ENV_COMMANDS:
        return name
    if name not in TOOLS:
        raise ToolError(f"unknown tool '{name}'; the tools are: {', '.join([*TOOLS, *ENV_COMMANDS, 'bash'])}")
    t = TOOLS[name]
    first = t.usage.split("\\n")[0]
    words = []
    for optional, arg in re.findall(r"(\[?)<(\w+)>", first):
        value = args.get(arg)
        if value is None:
            if optional:
                continue
            raise ToolError(f"{name} needs `{arg}`")
        words.append(str(value))
    head = f"{name} " + (f"{words[0]}:{words[1]}" if "<start>:<end>" in first else
                         " ".join(shlex.quote(w) for w in words))
    if t.block:
        return f"{head.strip()}\n{args.get('text') or ''}".rstrip("\n") + f"\nend_of_{name}"
    return head.strip()
