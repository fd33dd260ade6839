"""Untrusted text made safe for a terminal: the one helper every terminal writer of the plugin uses.

Agents write actions, and evaluators echo parts of artefacts into their reasons; either can hold
escape sequences (``ESC[2J`` clears the screen, ``ESC]0;...BEL`` sets the title), a carriage
return that overwrites a line, a bell, C1 controls (U+0080-U+009F, ``U+009B`` is a one-byte CSI
on some terminals) or bidi overrides that reorder what is shown. ``clean`` writes every such
character as a visible escape (``\\x1b``, ``\\u202e``), so none of them reaches the terminal as
itself, and keeps all other text (letters of any script, emoji, CJK) as it is.
"""
from __future__ import annotations

import re
import unicodedata

# Kept although they are format characters (Cf): they only join or separate letters (emoji
# sequences, Persian and Indic shaping) and move nothing.
JOINERS = frozenset("\u200c\u200d")
# Control (Cc: C0, DEL, C1), format (Cf: bidi marks, embeddings, overrides and isolates, zero-width
# and tag characters), line and paragraph separators (Zl, Zp: line breaks to some terminals) and
# lone surrogates (Cs: not printable at all).
CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_SUSPECT = re.compile(r"[^\x20-\x7e]")  # printable ASCII is safe; every other character is looked at


def _escape(match: re.Match) -> str:
    ch = match.group()
    if ch in JOINERS or unicodedata.category(ch) not in CATEGORIES:
        return ch
    c = ord(ch)
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}" if c <= 0xFFFF else f"\\U{c:08x}"


def clean(text: object) -> str:
    """``text`` with every control, format and separator character written as an escape
    (``"a\\x1b[2Jb"`` -> ``a\\x1b[2Jb`` shown as harmless characters); newlines and tabs too,
    so the result is always one line. Idempotent: cleaning clean text changes nothing."""
    return _SUSPECT.sub(_escape, str(text))
