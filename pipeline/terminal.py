"""Text bound for a terminal or a one-line message: no escape sequences, no control characters."""

from __future__ import annotations

import re

# CSI (ESC [ … final), OSC (ESC ] … BEL or ST), other two-byte ESC sequences, and C1 controls.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]|[\x80-\x9f]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Every character either pattern can start at: text without one (nearly all) is returned as it is.
_ANY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Drop escape sequences and control characters; keep newlines and tabs."""
    if _ANY_CONTROL.search(text) is None:
        return text
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def one_line(text: str) -> str:
    """A single printable line: whitespace runs (newlines included) become one space."""
    return " ".join(printable(text).split())
