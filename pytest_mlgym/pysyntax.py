"""Syntax checks of Python files after an edit, compiling only the top-level statements it touched.

``compile()`` of a 10,000-line module takes ~30 ms, most of the cost of an ``edit``. A module is a
sequence of top-level statements, and at the start of a line where one begins (at column 0, every
earlier statement ended on an earlier line, the line before not continued by a backslash) the
tokenizer is in its initial state. So when a file is known to compile and an edit falls between
two such lines, the new file compiles if and only if the new lines between them compile on their
own (padded with blank lines, so line numbers are the file's). What links statements to each
other is left out of that: ``from __future__`` imports (they must come first) and module-level
``global`` (an earlier assignment makes it an error); a file mentioning either, or with a coding
cookie, a byte-order mark or a lone carriage return (a line break to Python, not to the line
numbers here), is always compiled whole. When the lines fail on their own, the whole
file is compiled, so an error reported is always the whole file's.
"""
from __future__ import annotations

import ast
import bisect
import re
import warnings

_GLOBAL = re.compile(rb"global\b")  # then the byte before it is checked (a bare regex for it is ~8x slower)
_LONE_CR = re.compile(rb"\r(?!\n)")  # Python ends a line there too; the lines here are split at \n
_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=]", re.MULTILINE)  # PEP 263, on line 1 or 2
MIN_LINES = 2000  # smaller files are compiled whole: it costs under ~5 ms


class SyntaxCache:
    """For each file, its last content known to compile and the lines where its top-level
    statements start (with the tokenizer in its initial state)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[bytes, list[int] | None]] = {}

    def check(self, path: str, new: bytes, old: bytes | None = None, start: int = 1, removed: int = 0,
              added: int = 0) -> None:
        """Raise SyntaxError (or ValueError) if ``new`` does not compile. ``old`` is the file before
        an edit that replaced ``removed`` lines from line ``start`` by ``added`` lines."""
        known = self._known.pop(path, None)
        if new.count(b"\n") < MIN_LINES or not _separable(new):
            _compile(new, path)
            return
        lines = new.split(b"\n")
        if known is not None and old is not None and known[0] == old:
            # where the statements of the file before the edit start: noted at the previous edit, or
            # found now (parsed only: that file is known to compile)
            starts = known[1] if known[1] is not None else _starts(old.split(b"\n"), 1, _parse(path, old))
            known = (old, starts)
            s = starts[bisect.bisect_right(starts, start) - 1]  # the statement start at or before the edit
            i = bisect.bisect_left(starts, start + removed)  # the first one after the replaced lines
            delta = added - removed
            end = starts[i] + delta if i < len(starts) else len(lines) + 1
            try:
                region = b"\n" * (s - 1) + b"\n".join(lines[s - 1:end - 1])
                tree = _parse(path, region)
                _compile(tree, path)  # the checks after parsing (symbol table, code)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                pass  # the whole file decides
            else:
                self._known[path] = (new, starts[:bisect.bisect_left(starts, s)] + _starts(lines, s, tree)
                                     + [b + delta for b in starts[i:]])
                return
        try:
            _compile(new, path)  # the first time (or the file changed since): the whole file
        except BaseException:
            if known is not None and known[0] == old:  # the edit is refused: the file stays as it was
                self._known[path] = known
            raise
        self._known[path] = (new, None)


def _compile(source, path: str, flags: int = 0):
    with warnings.catch_warnings():  # the agent's invalid escapes and the like are not the harness's warnings
        warnings.simplefilter("ignore")
        return compile(source, path, "exec", flags, dont_inherit=True)


def _separable(source: bytes) -> bool:
    """Whether the statements of ``source`` can be compiled apart (see the module's docstring)."""
    head = b"\n".join(source.split(b"\n", 2)[:2])
    return not (b"__future__" in source or _mentions_global(source) or source.startswith(b"\xef\xbb\xbf")
                or _COOKIE.search(head) or (b"\r" in source and _LONE_CR.search(source)))


def _mentions_global(source: bytes) -> bool:
    """Whether the word ``global`` appears (``global_step`` or ``globals()`` do not count)."""
    return any(m.start() == 0 or not (source[m.start() - 1:m.start()].isalnum() or source[m.start() - 1] in b"_.")
               for m in _GLOBAL.finditer(source))


def _parse(path: str, source: bytes) -> ast.Module:
    return _compile(source, path, ast.PyCF_ONLY_AST)


def _starts(lines: list[bytes], first: int, tree: ast.Module) -> list[int]:
    """The lines from ``first`` on where the top-level statements of ``tree`` start with the
    tokenizer in its initial state (``first`` included: the caller knows it is such a line)."""
    out, last = [first], first - 1
    for stmt in tree.body:
        decorators = getattr(stmt, "decorator_list", None)
        begin = decorators[0].lineno if decorators else stmt.lineno
        continued = begin >= 2 and lines[begin - 2].rstrip(b"\r").endswith(b"\\")
        if stmt.col_offset == 0 and begin > last and begin > first and not continued:
            out.append(begin)
        last = max(last, stmt.end_lineno or stmt.lineno)
    return out
