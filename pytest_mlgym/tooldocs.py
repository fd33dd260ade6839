"""The toolbox as an agent is told about it: the docs of the first observation, and the same
commands as function schemas for models with native tool calling (and back to text actions)."""
from __future__ import annotations

import re
import shlex

from .observation import say
from .tools import ENV_COMMANDS, TOOLS, ToolError

INT_ARGS = {"line", "start", "end"}


def docs(artefact: str, step_s: float) -> str:
    """The tool documentation shown in the agent's first observation, generated from the registry."""
    rows = [(t.usage, t.doc) for t in TOOLS.values()] + list(ENV_COMMANDS.values())
    width = max(len(u.split("\\n")[0]) for u, _ in rows)
    lines = [say("docs_header")]
    for usage, doc in rows:
        first, *more = usage.split("\\n")
        lines.append(f"  {first.ljust(width)}  {doc}")
        if more:
            lines.append(f"  {'':{width}}  {say('docs_block', end=more[-1])}")
    lines += [f"  {say('docs_other').ljust(width)}  {say('docs_shell')}", "",
              say("docs_footer", artefact=artefact, step_s=step_s)]
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
