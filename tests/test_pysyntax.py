"""pytest_mlgym.pysyntax: after an edit, compiling only the touched statements must give exactly
the verdict (and the error) of compiling the whole file, whatever the edit."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_mlgym import pysyntax
from pytest_mlgym.pysyntax import SyntaxCache

STDLIB = Path(sys.modules["ast"].__file__).parent
CORPUS = [STDLIB / "textwrap.py", STDLIB / "dataclasses.py", STDLIB / "json" / "decoder.py",
          STDLIB / "string.py", Path(pysyntax.__file__).parent / "tools.py", Path(pysyntax.__file__).parent / "env" / "env.py"]
# lines that change how the lines around them parse: open and closed brackets and strings,
# continuations, decorators, block openers and their else/except, indentation, statements valid
# only in some places, and what links statements (global, __future__)
SNIPPETS = ["x = (", ")", "]", "x = [1,", "'''", '"""', "s = '''", "t = \"\"\"text", "x = 1 \\", "y = 2; \\",
            "@decorator", "@functools.cache", "def f(a, b):", "def g():", "    return a", "return 1", "class A:",
            "    pass", "pass", "if x:", "else:", "elif y:", "try:", "except ValueError:", "finally:", "    yield 3",
            "break", "await x", "nonlocal q", "global counter", "counter = 1", "from __future__ import annotations",
            "# a comment \\", "", "    ", "\tx = 1", "x = 'unterminated", "f'{x'", "lambda: (yield)", "z = {",
            "}", "async def h():", "    await h()", "match x:", "    case 1:", "        pass", "def f(a, a): pass",
            "x: int = 1", "del f()", "print('done')", "import os", "for i in range(3):", "    continue",
            "a = 1\rb = (", "d = 3\r"]  # Python also ends a line at a lone \r; "\r\n" is one line end


def whole(source: bytes, path: str = "m.py") -> tuple | None:
    """The whole file's verdict: None, or (type, msg, lineno) of its error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError) as e:
        return type(e).__name__, getattr(e, "msg", str(e)), getattr(e, "lineno", None)
    return None


def incremental(cache: SyntaxCache, new: bytes, old: bytes | None, span, path: str = "m.py") -> tuple | None:
    try:
        cache.check(path, new, old, *span)
    except (SyntaxError, ValueError, RecursionError) as e:
        return type(e).__name__, getattr(e, "msg", str(e)), getattr(e, "lineno", None)
    return None


@st.composite
def edits(draw, n_lines: int):
    start = draw(st.integers(1, n_lines + 1))
    removed = draw(st.integers(0, min(4, n_lines + 1 - start)))
    text = draw(st.lists(st.one_of(st.sampled_from(SNIPPETS),
                                   st.sampled_from(SNIPPETS).map(lambda s: "    " + s)), max_size=4))
    return start, removed, text


@pytest.fixture(autouse=True)
def every_file_incremental(monkeypatch):
    monkeypatch.setattr(pysyntax, "MIN_LINES", 0)  # the corpus files are below the size it starts at


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(CORPUS), st.data())
def test_an_edit_gets_the_whole_files_verdict(path, data):
    lines = path.read_text().split("\n")[:-1]
    cache = SyntaxCache()
    assert incremental(cache, ("\n".join(lines) + "\n").encode(), None, (1, 0, 0)) is None
    for _ in range(6):  # a sequence of edits, each kept only when it compiles (as the edit tool does)
        start, removed, text = data.draw(edits(len(lines)))
        new_lines = lines[:start - 1] + text + lines[start - 1 + removed:]
        old, new = ("\n".join(lines) + "\n").encode(), ("\n".join(new_lines) + "\n").encode()
        got = incremental(cache, new, old, (start, removed, len(text)))
        assert got == whole(new), (path.name, start, removed, text)
        if got is None:
            lines = new_lines


BLOCKS = [["x = 1"], ["def f(a, b):", "    return a"], ['s = """', "text", '"""'], ["@decorator", "def g():", "    pass"],
          ["y = 2; \\", "z = 3"], ["x = (1,", "  2); w = 3"], ["counter = 1"], ['"""doc"""'], ["import os"],
          ["if x:", "    pass", "else:", "    pass"], ["class A:", "    pass"], ["# comment", ""], ["t = [", "]"]]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(BLOCKS), min_size=2, max_size=8), st.data())
def test_small_files_and_many_edits_get_the_whole_files_verdict(blocks, data):
    """Small files, so that edits often start or end on statement boundaries, continuation lines,
    decorators and strings, and later edits meet what earlier ones left."""
    lines = [line for block in blocks for line in block]
    cache = SyntaxCache()
    assert incremental(cache, ("\n".join(lines) + "\n").encode(), None, (1, 0, 0)) is None
    for _ in range(8):
        start, removed, text = data.draw(edits(len(lines)))
        new_lines = lines[:start - 1] + text + lines[start - 1 + removed:]
        old, new = ("\n".join(lines) + "\n").encode(), ("\n".join(new_lines) + "\n").encode()
        got = incremental(cache, new, old, (start, removed, len(text)))
        assert got == whole(new), (lines, start, removed, text)
        if got is None:
            lines = new_lines


def test_it_compiles_only_the_edited_statements_of_a_big_file(monkeypatch):
    """The first check compiles the file; the next one also parses the file it edits once (to find
    where its statements start); from then on only the edited statements are compiled."""
    big = b"".join(b"value_%05d = %d\n" % (i, i) for i in range(1, 10_001))
    cache = SyntaxCache()
    cache.check("big.py", big)
    second = big.replace(b"value_05000 = 5000\n", b"value_05000 = 5001\n")
    cache.check("big.py", second, big, 5000, 1, 1)
    compiled: list[int] = []
    real = compile
    monkeypatch.setattr("builtins.compile", lambda src, *a, **k: (
        compiled.append(len(src) if isinstance(src, bytes) else 0), real(src, *a, **k))[1])
    third = second.replace(b"value_07000 = 7000\n", b"value_07000 = 7001\n")
    cache.check("big.py", third, second, 7000, 1, 1)
    assert len(big) > 180_000 and compiled and max(compiled) < 8_000  # line 7000 after 6999 newlines
    broken = third.replace(b"value_05000 = 5001\n", b"value_05000 = (\n")
    with pytest.raises(SyntaxError) as e:
        cache.check("big.py", broken, third, 5000, 1, 1)
    assert e.value.lineno == 5000
    compiled.clear()  # the refused edit left the file as it was, and what is known of it
    cache.check("big.py", third.replace(b"value_00001 = 1\n", b"value_00001 = 2\n"), third, 1, 1, 1)
    assert max(compiled) < 100


@pytest.mark.parametrize("lines, edit", [
    (["x = 1", "y = 2", "global counter", "z = 3"], (1, 0, ["counter = 1"])),  # assigned before global
    (["x = 1", "y = 2", "z = 3"], (3, 0, ["from __future__ import annotations"])),  # not first
    (["import os", "y = 2", "z = 3"], (2, 1, ["y = 2; \\", "def f(): pass"])),  # a def after `;`
])
def test_edits_whose_lines_compile_alone_but_not_in_the_file_are_refused(lines, edit):
    cache = SyntaxCache()
    old = ("\n".join(lines) + "\n").encode()
    assert incremental(cache, old, None, (1, 0, 0)) is None
    start, removed, text = edit
    new = ("\n".join(lines[:start - 1] + text + lines[start - 1 + removed:]) + "\n").encode()
    assert whole(new) is not None and incremental(cache, new, old, (start, removed, len(text))) == whole(new)


@pytest.mark.parametrize("head", [b"from __future__ import annotations\n", b"# -*- coding: latin-1 -*-\n",
                                  b"\xef\xbb\xbf", b"global g\n"])
def test_files_whose_statements_are_linked_are_compiled_whole(head):
    """A __future__ import must come first, a module-level global after an assignment is an error,
    and a coding cookie or BOM changes how every line is read: such files are never split."""
    assert not pysyntax._separable(head + b"x = 1\n")
    assert pysyntax._separable(b"x = 1\ny = x\n")
    assert pysyntax._separable(b"global_step = 0\nnames = globals()\nx.global_ = 1\n")  # ML code says global_step
    assert not pysyntax._separable(b"def f():\n    global step\n")  # any `global` (inside a def too): whole
