"""The agent-computer interface (pytest_mlgym.tools) driven over a real local sandbox."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_mlgym import interactive
from pytest_mlgym.sandbox import SandboxConfig, create
from pytest_mlgym.tools import ENV_COMMANDS, INTERACTIVE, TOOLS, ToolBox, docs, refuse_interactive


@pytest.fixture
def ws(tmp_path) -> Path:
    w = tmp_path / "ws"
    w.mkdir()
    (w / "notes.txt").write_text("".join(f"line {i}\n" for i in range(1, 36)))
    return w


@pytest.fixture
def sandbox(ws):
    sb = create("local", ws, SandboxConfig())
    yield sb
    sb.close()


@pytest.fixture
def tb(sandbox) -> ToolBox:
    return ToolBox(sandbox, timeout=20, window=10)


def shown(out: str) -> list[int]:
    """The line numbers a file view shows."""
    return [int(l.split(":", 1)[0]) for l in out.splitlines() if l.split(":", 1)[0].isdigit()]


def is_error(out: str) -> bool:
    return out.startswith("Error: ") and "\nUsage: " in out


# -- viewing ---------------------------------------------------------------------------------------
def test_open_shows_a_window_with_header_and_line_numbers(tb, ws):
    out = tb.run("open notes.txt").splitlines()
    assert out[0] == f"[File: {ws}/notes.txt (35 lines total)]"
    assert out[1:11] == [f"{i}:line {i}" for i in range(1, 11)]
    assert out[11:] == ["(25 more lines below)"]


def test_open_near_a_line(tb):
    out = tb.run("open notes.txt 20")
    assert shown(out) == list(range(15, 25))
    assert "(14 more lines above)" in out and "(11 more lines below)" in out


def test_goto(tb):
    tb.run("open notes.txt")
    out = tb.run("goto 30")
    assert shown(out) == list(range(25, 35)) and "(24 more lines above)" in out and "(1 more lines below)" in out
    out = tb.run("goto 35")
    assert shown(out) == list(range(26, 36)) and "(25 more lines above)" in out and "below" not in out
    assert shown(tb.run("goto 1000")) == list(range(26, 36))
    out = tb.run("goto 1")
    assert shown(out) == list(range(1, 11)) and "above" not in out
    assert shown(tb.run("goto -4")) == list(range(1, 11))
    out = tb.run("goto 7")
    assert shown(out) == list(range(2, 12)) and "(1 more lines above)" in out and "(24 more lines below)" in out


def test_scrolling_stays_in_bounds(tb):
    tb.run("open notes.txt")
    assert shown(tb.run("scroll_down")) == list(range(11, 21))
    assert shown(tb.run("scroll_down")) == list(range(21, 31))
    assert shown(tb.run("scroll_down")) == list(range(26, 36))
    assert shown(tb.run("scroll_down")) == list(range(26, 36))
    assert shown(tb.run("scroll_up")) == list(range(16, 26))
    assert shown(tb.run("scroll_up")) == list(range(6, 16))
    out = tb.run("scroll_up")
    assert shown(out) == list(range(1, 11)) and "above" not in out
    assert shown(tb.run("scroll_up")) == list(range(1, 11))


def test_short_and_empty_files(tb, ws):
    (ws / "short.txt").write_text("a\nb\n")
    out = tb.run("open short.txt")
    assert out.splitlines() == [f"[File: {ws}/short.txt (2 lines total)]", "1:a", "2:b"]
    (ws / "empty.txt").write_text("")
    assert tb.run("open empty.txt") == f"[File: {ws}/empty.txt (0 lines total)]"
    assert tb.run("scroll_down") == f"[File: {ws}/empty.txt (0 lines total)]"


def test_a_big_file_opens_fast_and_shows_only_the_window(tb, ws):
    (ws / "big.txt").write_text("".join(f"row {i}\n" for i in range(1, 10_001)))
    start = time.monotonic()
    out = tb.run("open big.txt")
    assert time.monotonic() - start < 2
    assert out.startswith(f"[File: {ws}/big.txt (10000 lines total)]")
    assert shown(out) == list(range(1, 11)) and out.endswith("(9990 more lines below)")
    assert len(out) < 500
    out = tb.run("goto 5000")
    assert shown(out) == list(range(4995, 5005)) and "(4994 more lines above)" in out


def test_the_open_file_stays_open_after_cd(tb, sandbox, ws):
    (ws / "sub").mkdir()
    (ws / "sub" / "notes.txt").write_text("other\n")
    tb.run("open notes.txt")
    assert sandbox.exec("cd sub", 10).returncode == 0
    out = tb.run("edit 1:1\nfirst\nend_of_edit")
    assert (ws / "notes.txt").read_text().startswith("first\nline 2\n")
    assert (ws / "sub" / "notes.txt").read_text() == "other\n"
    assert f"{ws}/notes.txt" in out


def test_long_lines_are_cut(tb, ws):
    (ws / "wide.txt").write_text("x" * 5000 + "\n")
    out = tb.run("open wide.txt")
    assert "[... 3000 characters cut]" in out and len(out) < 2200


def test_open_errors_are_shown_not_raised(tb, ws):
    (ws / "folder").mkdir()
    for action in ("open missing.txt", "open folder", "open", "open a b c", "open notes.txt x", "open ../x",
                   "open 'unclosed"):
        out = tb.run(action)
        assert out.startswith(("Error: ", "Could not parse")), (action, out)
    assert "No such file" in tb.run("open missing.txt")


def test_no_open_file(tb):
    for action in ("goto 3", "scroll_down", "scroll_up", "edit 1:1\nx", "insert 0\nx", "search_file x"):
        out = tb.run(action)
        assert is_error(out) and "no file is open" in out, (action, out)


# -- creating --------------------------------------------------------------------------------------
def test_create_empty_and_with_text(tb, ws):
    out = tb.run("create empty.py")
    assert out.startswith(f"Created {ws}/empty.py.") and (ws / "empty.py").read_text() == ""
    out = tb.run("create pkg/script.py\nimport sys\n\nprint(sys.argv)\nend_of_create")
    assert (ws / "pkg" / "script.py").read_text() == "import sys\n\nprint(sys.argv)\n"
    assert "[File: " in out and "3:print(sys.argv)" in out
    tb.run("create nomarker.txt\ntext without the end marker")
    assert (ws / "nomarker.txt").read_text() == "text without the end marker\n"


def test_create_refuses_to_overwrite(tb, ws):
    (ws / "empty.txt").write_text("")
    (ws / "link").symlink_to(ws / "nowhere")
    for name in ("notes.txt", "empty.txt", "link"):
        before = (ws / name).read_bytes() if (ws / name).exists() else None
        out = tb.run(f"create {name}\nreplaced\nend_of_create")
        assert is_error(out) and "already exists" in out, (name, out)
        assert ((ws / name).read_bytes() if (ws / name).exists() else None) == before
    assert not (ws / "nowhere").exists()


def test_create_refuses_a_python_syntax_error(tb, ws):
    out = tb.run("create bad.py\ndef f(:\n    pass\nend_of_create")
    assert "rolled back" in out and "not created" in out and "bad.py:1" in out
    assert not (ws / "bad.py").exists()


# -- editing ---------------------------------------------------------------------------------------
PROGRAM = "import os\n\n\ndef main():\n    return 1\n\n\nprint(main())\n"


@pytest.fixture
def program(tb, ws) -> Path:
    p = ws / "prog.py"
    p.write_text(PROGRAM)
    tb.run("open prog.py")
    return p


def test_edit_replaces_a_range(tb, program):
    out = tb.run("edit 4:5\ndef main():\n    x = 2\n    return x\nend_of_edit")
    assert program.read_text() == "import os\n\n\ndef main():\n    x = 2\n    return x\n\n\nprint(main())\n"
    assert "lines 4-5 replaced by 3 lines" in out and "6:    return x" in out


def test_edit_with_no_text_deletes(tb, program):
    tb.run("edit 1:3\nend_of_edit")
    assert program.read_text() == "def main():\n    return 1\n\n\nprint(main())\n"
    tb.run("edit 5:5")
    assert program.read_text() == "def main():\n    return 1\n\n\n"
    tb.run("edit 1:4")
    assert program.read_text() == ""  # every line deleted: an empty file, not a blank line


def test_edit_that_breaks_python_is_rolled_back(tb, program):
    out = tb.run("edit 5:5\n    return (1\nend_of_edit")
    assert program.read_text() == PROGRAM
    assert "rolled back" in out and "left as it was" in out and "prog.py:5" in out
    out = tb.run("edit 8:8\nprint(main()\nend_of_edit")
    assert program.read_text() == PROGRAM and "rolled back" in out and "prog.py:8" in out
    out = tb.run("edit 5:5\n    return '\0'\nend_of_edit")  # a NUL byte: not a crash, a rollback
    assert program.read_text() == PROGRAM and "rolled back" in out


def test_non_python_files_are_not_syntax_checked(tb, ws):
    tb.run("open notes.txt")
    out = tb.run("edit 1:1\ndef broken(:\nend_of_edit")
    assert "rolled back" not in out
    assert (ws / "notes.txt").read_text().startswith("def broken(:\nline 2\n")


def test_insert_at_the_top_and_the_end(tb, ws):
    tb.run("open notes.txt")
    out = tb.run("insert 0\nzero\nend_of_insert")
    assert "Inserted 1 lines after line 0" in out
    tb.run("insert 36\nlast one\nand another\nend_of_insert")
    text = (ws / "notes.txt").read_text().splitlines()
    assert text[0] == "zero" and text[1] == "line 1" and text[-3:] == ["line 35", "last one", "and another"]
    assert len(text) == 38


def test_insert_that_breaks_python_is_rolled_back(tb, program):
    out = tb.run("insert 3\n  indented = 1\nend_of_insert")
    assert program.read_text() == PROGRAM and "rolled back" in out and "prog.py:4" in out


def test_edits_keep_the_rest_of_the_file_byte_for_byte(tb, ws):
    raw = b"a\r\nb\xe2\x80\xa8c\x0cd\r\n\xff\xfe latin\r\nlast\r\n"
    (ws / "data.txt").write_bytes(raw)
    out = tb.run("open data.txt")
    assert "(4 lines total)" in out
    tb.run("edit 4:4\nLAST\nend_of_edit")
    assert (ws / "data.txt").read_bytes() == b"a\r\nb\xe2\x80\xa8c\x0cd\r\n\xff\xfe latin\r\nLAST\n"


def test_bad_ranges_are_shown_not_raised(tb, ws):
    tb.run("open notes.txt")
    for action in ("edit 5:2\nx", "edit 0:1\nx", "edit 1:99\nx", "edit abc\nx", "edit 1-2\nx", "edit a:b\nx",
                   "insert 99\nx", "insert -1\nx", "insert x\nx", "goto x", "goto", "scroll_down extra",
                   "search_dir", "find_file"):
        out = tb.run(action)
        assert is_error(out) or "takes no text" in out, (action, out)
    assert (ws / "notes.txt").read_text() == "".join(f"line {i}\n" for i in range(1, 36))
    assert "outside the file (1-35)" in tb.run("edit 30:40\nx")
    assert "takes no text" in tb.run("goto 3\nsome text")


# -- searching -------------------------------------------------------------------------------------
@pytest.fixture
def tree(ws) -> Path:
    (ws / "a.py").write_text("needle one\nhay\nmore needle here\n")
    (ws / "sub").mkdir()
    (ws / "sub" / "b.txt").write_text("a needle\ntwo words\n")
    (ws / "c.txt").write_text("nothing\n")
    return ws


def test_search_dir(tb, tree):
    out = tb.run("search_dir needle")
    assert out.splitlines()[0] == 'Files containing "needle" in . (file:matches):'
    assert sorted(out.splitlines()[1:]) == ["./a.py:2", "./sub/b.txt:1"]
    assert tb.run("search_dir needle sub").splitlines()[1:] == ["sub/b.txt:1"]
    assert tb.run('search_dir "two words"').splitlines()[1:] == ["./sub/b.txt:1"]
    assert tb.run("search_dir haystack") == 'No matches for "haystack" in .'
    out = tb.run("search_dir needle missing_dir")
    assert is_error(out) and "No such file" in out


def test_search_file(tb, tree):
    out = tb.run("search_file needle a.py")
    assert out.splitlines() == ['Lines containing "needle" in a.py:', "1:needle one", "3:more needle here"]
    tb.run("open sub/b.txt")
    assert tb.run("search_file words").splitlines()[1:] == ["2:two words"]
    assert tb.run("search_file zzz a.py") == 'No matches for "zzz" in a.py'
    out = tb.run("search_file needle missing.py")
    assert is_error(out) and "No such file" in out


def test_find_file(tb, tree):
    assert sorted(tb.run('find_file "*.txt"').splitlines()[1:]) == ["./c.txt", "./notes.txt", "./sub/b.txt"]
    assert tb.run("find_file b.txt sub").splitlines() == ['Files named "b.txt" under sub:', "sub/b.txt"]
    assert tb.run("find_file zzz.txt") == 'No file named "zzz.txt" under .'
    out = tb.run("find_file a.py missing_dir")
    assert is_error(out) and "No such file" in out


# -- parsing, refusing, docs -----------------------------------------------------------------------
def test_handles_only_tool_names(tb):
    assert tb.handles("open x") and tb.handles("  edit 1:2\ntext") and tb.handles("scroll_down")
    assert not tb.handles("ls -la") and not tb.handles("") and not tb.handles("opener x")
    assert not tb.handles("validate") and not tb.handles("submit")


@pytest.mark.parametrize("cmd", [
    "vim", "vim train.py", "nano x", "git status", "git", "python", "python3", "python3.11", "python -i",
    "python -i train.py", "python -u -i x.py", "/usr/bin/python3", "cd x && vim y", "FOO=1 nano",
    "ls; less log.txt", "sudo vim x", "tail -f log.txt", "tail -n 5 -f log.txt", "tail --follow=name log",
    "ipython", "top", "(cd src; emacs a.py)",
])
def test_refuses_interactive_programs(cmd):
    msg = refuse_interactive(cmd)
    assert msg and msg.startswith("Refused: "), cmd


@pytest.mark.parametrize("cmd", [
    "python train.py", "python -c 'print(1)'", "python3 -m pip list", "python -W ignore train.py",
    "python train.py -i data.csv", "python - <<'EOF'\nprint(1)\nEOF", "python -V", "ls | grep vim",
    "echo git", "echo vim && ls", "cat gitignore", "tail -n 20 log.txt", "FOO=1 python run.py",
    "python -mtimeit -n 1 pass", "pip install -q numpy", "./vim_helper.sh", "nohup python train.py > log 2>&1 &",
])
def test_allows_non_interactive_commands(cmd):
    assert refuse_interactive(cmd) is None, cmd


_PROGRAMS = [*sorted(INTERACTIVE), "tail", "python", "python3.11", "echo", "ls", "vi.sh", "device", "-vim"]
_ARGS = ["-f", "-Fn", "--follow", "-i", "-c 'print(1)'", "-m pip", "x.py", "-n 5", "-", "vim", "'a b'"]


@st.composite
def _commands(draw):
    """Commands of one to three parts, each a program (its name perhaps cut by quotes or a
    backslash, as `v''im` or `py\\thon`) with a prefix and arguments."""
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(_PROGRAMS))
        cut = draw(st.integers(0, len(name)))
        name = name[:cut] + draw(st.sampled_from(["", "''", '""', "\\"])) + name[cut:]
        prefix = draw(st.sampled_from(["", "sudo ", "FOO=1 ", "/usr/bin/", "nohup ", "("]))
        parts.append(" ".join([prefix + name, *draw(st.lists(st.sampled_from(_ARGS), max_size=3))]))
    return "".join(p + draw(st.sampled_from(["; ", " && ", " | ", "\n", " & ", ") "])) for p in parts)


@settings(max_examples=1000, deadline=None)
@given(_commands())
def test_the_fast_path_never_lets_through_what_parsing_refuses(cmd):
    """refuse_interactive skips parsing when no candidate program name appears in the command;
    that shortcut must never change the answer."""
    assert refuse_interactive(cmd) == interactive._refuse_parsed(cmd), cmd


def test_docs_list_every_tool_and_the_env_commands():
    text = docs("submission.csv", 90)
    for t in TOOLS.values():
        assert f"  {t.usage.split(chr(92) + 'n')[0]}" in text, t.name
        assert t.doc in text
        if t.block:
            assert f"`end_of_{t.name}`" in text
    for usage, doc in ENV_COMMANDS.values():
        assert f"  {usage}" in text and doc in text
    assert {"validate", "submit"} <= set(ENV_COMMANDS)
    assert set(TOOLS) >= {"open", "goto", "scroll_up", "scroll_down", "create", "edit", "insert",
                          "search_dir", "search_file", "find_file"}
    assert "`submission.csv`" in text and "90 s" in text
