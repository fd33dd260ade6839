"""The toolbox as an agent is told about it: the docs of the first observation, and the same
commands as function schemas for models with native tool calling (and back to text actions)."""
from __future__ import annotations

import re
import shlex

from .observation import say
from .tools import ENV_COMMANDS, TOOLS, ToolError

INT_ARGS = {"line", "start", "end"}


def docs(artefact: str, step_s: float, tools: bool = False) -> str:
    """The tool documentation shown in the agent's first observation, generated from the registry:
    in the text format (a block tool's text on the lines after it, up to ``end_of_<tool>``), or, for
    a model with native tool calling (``tools``), as tools whose arguments carry the text."""
    rows = [(t.usage, t.doc) for t in TOOLS.values()] + list(ENV_COMMANDS.values())
    shell = (say("docs_bash"), say("docs_shell_tool")) if tools else (say("docs_other"), say("docs_shell"))
    width = max(len(u.split("\\n")[0]) for u, _ in [*rows, shell])
    lines = [say("docs_header")] + ([say("docs_tools")] if tools else [])
    for usage, doc in rows:
        first, *more = usage.split("\\n")
        lines.append(f"  {first.ljust(width)}  {doc}")
        if more:
            lines.append(f"  {'':{width}}  {say('docs_block_tool') if tools else say('docs_block', end=more[-1])}")
    lines += [f"  {shell[0].ljust(width)}  {shell[1]}", "", say("docs_footer", artefact=artefact, step_s=step_s)]
    return "\n".join(lines)


def schemas(extra: dict[str, tuple[str, str]] | None = None) -> list[dict]:
    """OpenAI-style function schemas of every command, generated from the registry's usage lines:
    ``<x>`` is a required argument, ``[<x>]`` an optional one, a block tool takes ``text``. Plain
    shell commands go through ``bash``; ``extra`` adds agent-side commands (name -> usage, doc)."""
    out = []
    rows = [(t.name, t.usage, t.doc, t.block) for t in TOOLS.values()]
    rows += [(name, usage, doc, False) for name, (usage, doc) in {**ENV_COMMANDS, **(extra or {})}.items()]
    for name, usage, doc, block in rows:
        props, required = {}, []
        first = usage.split("\\n")[0]
        for optional, arg in re.findall(r"(\[?)<(\w+)>", first):
            props[arg] = {"type": "integer" if arg in INT_ARGS else "string",
                          "description": arg_doc(name, arg, first)}
            if not optional:
                required.append(arg)
        if block:
            props["text"] = {"type": "string", "description": arg_doc(name, "text", first)}
        out.append(_function(name, doc, props, required))
    out.append(_function("bash", say("docs_shell_tool"),
                         {"command": {"type": "string", "description": arg_doc("bash", "command", "bash <command>")}},
                         ["command"]))
    return out


# what each argument of a tool schema is: by (tool, argument), else by argument
ARG_DOCS = {
    "path": "the file's path, relative to the current folder or absolute",
    "line": "a line number (the file's first line is 1)",
    "start": "the first line to replace (the file's first line is 1)",
    "end": "the last line to replace (inclusive)",
    "dir": "the folder to search under (default: the current folder)",
    "name": "the file name to find; wildcards (*, ?) allowed",
    "command": "the shell command line to run",
    "text": "the text (may span many lines)",
}
TOOL_ARG_DOCS = {
    ("open", "line"): "the line to show in the window (default: 1)",
    ("insert", "line"): "the line after which the text goes (0: at the top)",
    ("search_dir", "text"): "the text to search for",
    ("search_file", "text"): "the text to search for",
    ("search_file", "path"): "the file to search (default: the open file)",
    ("create", "text"): "the new file's content, every line of it (may span many lines; empty: an empty file)",
    ("edit", "text"): "the lines that replace lines start to end, indented as they must be (empty: delete them)",
    ("insert", "text"): "the lines to insert, indented as they must be (may span many lines)",
    ("memory_write", "text"): "the note to keep for your later attempts",
}


def arg_doc(tool: str, arg: str, usage: str) -> str:
    """The description of argument ``arg`` of ``tool`` (whose usage line is ``usage``)."""
    return TOOL_ARG_DOCS.get((tool, arg)) or ARG_DOCS.get(arg) or f"<{arg}> in `{usage}`"


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
