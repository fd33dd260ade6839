"""Set ``sizes.<size>.<key>`` in a task.yaml by editing one line, keeping every other byte.

A task.yaml carries comments that explain its numbers (how a baseline was measured, why the
tolerance is what it is); a YAML round trip through a parser would drop them. So the edit is
textual: the size's entry is either a one-line flow mapping (``lite: {baseline: 0.9, tolerance:
0.01}``, the shipped tasks' style) whose one item is replaced or appended, or a block mapping
whose ``key:`` line is replaced (comment kept) or added after its last item. The result is parsed
again and must equal the original with only the given keys changed; otherwise nothing is written
and :class:`EditError` says why.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import yaml


class EditError(Exception):
    """The file cannot be edited safely; one line."""


def number(value: float | int) -> str:
    """``value`` as YAML that PyYAML reads back as the same number (``1e-05`` would be a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EditError(f"not a finite number: {value!r}")
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exp}"
    return text


def set_size_values(path: Path, size: str, values: Mapping[str, float | int | bool | list[float]]) -> None:
    """Write ``values`` into ``sizes.<size>`` of the task.yaml at ``path``."""
    path = Path(path)
    original = path.read_text()
    text = edit(original, size, dict(values))
    path.write_text(text)


def edit(text: str, size: str, values: dict) -> str:
    """The text of a task.yaml with ``sizes.<size>.<key> = value`` for each item of ``values``."""
    before = _load(text)
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"sizes:\s*(#.*)?$", line)), None)
    if start is None:
        raise EditError("no block 'sizes:' line at the top level (a one-line 'sizes: {...}' is not edited)")
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"[^\s#]", lines[i])), len(lines))
    at = next((i for i in range(start + 1, end) if re.match(rf"\s+{re.escape(size)}:(\s|$)", lines[i])), None)
    if at is None:
        raise EditError(f"sizes has no '{size}:' entry")
    line = lines[at]
    indent = len(line) - len(line.lstrip())
    rest = line.split(":", 1)[1].strip()
    if rest.startswith("{"):
        lines[at] = _edit_flow(line, values)
    elif rest and not rest.startswith("#"):
        raise EditError(f"sizes.{size} is neither a flow mapping {{...}} nor a block mapping")
    else:
        lines[at + 1:end] = _edit_block(lines[at + 1:end], indent, values)
    out = "".join(lines)
    _check(before, _load(out), size, values)
    return out


def _format(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    return "true" if value is True else "false" if value is False else number(value)


def _edit_flow(line: str, values: dict) -> str:
    """Replace or append items of a one-line flow mapping ``  lite: {a: 1, b: 2}  # comment``."""
    head, _, body = line.partition("{")
    close = _closing(body)
    if close is None:
        raise EditError("a flow mapping that spans lines is not edited; put it on one line")
    inner, tail = body[:close], body[close + 1:]
    items = [item for item in _split_items(inner) if item.strip()]
    keys = [item.split(":", 1)[0].strip() for item in items]
    for key, value in values.items():
        text = f"{key}: {_format(value)}"
        if key in keys:
            items[keys.index(key)] = (" " if items[keys.index(key)].startswith(" ") else "") + text
        else:
            items.append(" " + text if items else text)
            keys.append(key)
    return head + "{" + ",".join(items).strip() + "}" + tail


def _outside_quotes(text: str):
    """``(i, c, depth)`` for each character of a flow collection's text that is not inside quotes,
    ``depth`` the brackets open before it."""
    depth, quote = 0, None
    for i, c in enumerate(text):
        if quote:
            quote = None if c == quote else quote
            continue
        if c in "'\"":
            quote = c
        yield i, c, depth
        depth += (c in "{[") - (c in "}]")


def _closing(body: str) -> int | None:
    """Where the flow mapping that ``body`` continues closes (None: a list closes it, or nothing does)."""
    for i, c, depth in _outside_quotes(body):
        if c in "}]" and depth == 0:
            return i if c == "}" else None
    return None


def _split_items(inner: str) -> list[str]:
    cuts = [i for i, c, depth in _outside_quotes(inner) if c == "," and depth == 0]
    return [inner[a + 1:b] for a, b in zip([-1, *cuts], [*cuts, len(inner)])]


def _edit_block(body: list[str], indent: int, values: dict) -> list[str]:
    """Replace or add ``key: value`` lines among the direct children of a block mapping."""
    stop = next((j for j, line in enumerate(body) if _content(line) and _indent(line) <= indent), len(body))
    kids = [i for i in range(stop) if _content(body[i])]
    if not kids:
        raise EditError("an empty block mapping: give the size its keys first")
    pad = " " * _indent(body[kids[0]])
    direct = [i for i in kids if _indent(body[i]) == len(pad)]
    for key, value in values.items():
        found = next((i for i in direct if re.match(rf"{pad}{re.escape(key)}:(\s|$)", body[i])), None)
        if found is None:  # after the entry's last line
            body.insert(kids[-1] + 1, f"{pad}{key}: {_format(value)}\n")
            kids.append(kids[-1] + 1)
            direct.append(kids[-1])
            continue
        comment = re.search(r"\s+#.*$", body[found].rstrip("\n").split(":", 1)[1])
        body[found] = f"{pad}{key}: {_format(value)}{comment.group(0) if comment else ''}\n"
    return body


def _content(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _load(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise EditError(f"not valid YAML: {' '.join(str(e).split())}") from None


def _check(before, after, size: str, values: dict) -> None:
    """The edit changed exactly the given keys of sizes.<size>."""
    if not isinstance(after, dict) or not isinstance(after.get("sizes", {}).get(size), dict):
        raise EditError("the edit broke the file's structure (nothing written)")
    expected = {**before, "sizes": {**before["sizes"], size: {**before["sizes"][size], **values}}}
    if after != expected:
        raise EditError("the edit would change more than the given keys (nothing written)")
