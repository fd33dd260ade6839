"""Refusing shell commands that start an interactive program, which would hang the episode."""
from __future__ import annotations

import re
import shlex

from .observation import say

INTERACTIVE = {"vim", "vi", "nvim", "nano", "emacs", "pico", "less", "more", "man", "top", "htop", "watch",
               "ssh", "ftp", "telnet", "git", "ipython", "jupyter", "screen", "tmux"}
PYTHONS = re.compile(r"^python(\d+(\.\d+)?)?$")
FOLLOW = re.compile(r"^(-[A-Za-z]*[fF][A-Za-z]*|--follow(=.*)?)$")  # `tail -f`, `tail -Fn`, `tail --follow`
# any program refuse_interactive could refuse, as a word of the command with its quotes taken out:
# a command without one (most of them) is let through without being parsed
_MAYBE_INTERACTIVE = re.compile(rf"(?<![\w.-])(?:{'|'.join(sorted(INTERACTIVE))}|tail|python[\d.]*)(?![\w.-])")
_UNQUOTE = str.maketrans("", "", "'\"\\")


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
            return say("refused_follow")
        if prog in INTERACTIVE or bare_python:
            what = say("interactive_python") if bare_python else say("interactive_program", program=prog)
            return say("refused_interactive", what=what)
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
