"""Joins: points in a text where cl100k_base's pre-tokenizer always cuts, so token counts add up.

A byte-pair tokenizer first splits text with a regular expression, then merges bytes within each
piece. Two sentences glued together ("…崛起。" + "中國…") can be encoded differently from the
two apart ("。中國" is one piece), but no piece ever spans a join, so for a join at p:

    count(text[a:b]) == count(text[a:p]) + count(text[p:b])    for every a <= p <= b.

Joins, read off cl100k_base's pattern (each alternative ends where its character class does):
- after a letter, before a character that is not a letter (a letter run ends there);
- after a digit, before a character that is not a digit (digit groups of three restart there);
- after a line break, before a character that is not whitespace.
Characters unassigned in this Python's Unicode tables are never treated as a join: a newer
Unicode version (the tokenizer's) may make them letters.
"""

from __future__ import annotations

import unicodedata


def is_join(text: str, position: int) -> bool:
    if not 0 < position < len(text):
        return False
    before, after = text[position - 1], text[position]
    if before == "\n":
        return not after.isspace()  # str.isspace covers every Unicode White_Space character
    if before.isalpha():  # general category L*, exactly the tokenizer's \p{L}
        return not after.isalpha() and unicodedata.category(after) != "Cn"
    if unicodedata.category(before)[0] == "N":
        after_kind = unicodedata.category(after)
        return after_kind[0] != "N" and after_kind != "Cn"
    return False


# How far from the end of a span the joins are looked for. A sentence has one a step or two from
# each end; a span without one nearby is merely counted whole, so the scan never costs more than this.
_REACH = 32


def first_join(text: str, start: int, end: int) -> int | None:
    """The first join p with start < p <= min(end, start + _REACH), if any."""
    for position in range(start + 1, min(end, start + _REACH) + 1):
        if is_join(text, position):
            return position
    return None


def last_join(text: str, start: int, end: int) -> int | None:
    """The last join p with max(start, end - _REACH) < p <= end, if any."""
    for position in range(end, max(start, end - _REACH), -1):
        if is_join(text, position):
            return position
    return None
