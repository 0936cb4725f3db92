"""The untranslated-fragment check: Han, kana or Hangul left in English prose."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.checks.prose import CJK_CLASS, Fields, Term, iter_fields, sentence_at, sentence_spans
from pipeline.records import CheckFlag

# A run of CJK letters, allowing the middle dots of transliterated names (布拉德·史密斯).
_RUN = re.compile(f"[{CJK_CLASS}]+(?:[·・‧][{CJK_CLASS}]+)*")
_OPENERS = "\"“「『‘'(（《〈【"
_CLOSERS = "\"”」』’')）》〉】"


def check_fragments(fields: Fields, terms: Sequence[Term]) -> list[CheckFlag]:
    """Flag CJK in English fields, except a glossary source term quoted or bracketed beside its English."""
    flags: list[CheckFlag] = []
    for field, text in iter_fields(fields):
        spans = sentence_spans(text)
        for match in _RUN.finditer(text):
            run = match.group()
            if _quoted(text, match.start(), match.end()) and any(run in term.forms for term in terms):
                continue
            start, end = _word_around(text, match.start(), match.end())
            written = text[start:end]
            suggestions = _renderings(run, terms)
            flags.append(
                CheckFlag(
                    kind="untranslated",
                    field=field,
                    text=written,
                    sentence=sentence_at(text, spans, start),
                    message=f'"{written}" is not translated',
                    suggestions=suggestions,
                )
            )
    return flags


def _quoted(text: str, start: int, end: int) -> bool:
    before = text[:start].rstrip()
    after = text[end:].lstrip()
    return bool(before) and bool(after) and before[-1] in _OPENERS and after[0] in _CLOSERS


def _word_around(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen "郑月娥" to "Lin郑月娥": the reader should see the whole mangled word."""
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "-'’"):
        start -= 1
    while end < len(text) and (text[end].isalnum() or text[end] in "-'’"):
        end += 1
    return start, end


def _renderings(run: str, terms: Sequence[Term]) -> tuple[str, ...]:
    """The glossary's English for a term the fragment is part of, or that the fragment holds."""
    found: list[str] = []
    for term in terms:
        if term.target and any(run in form or form in run for form in term.forms if form):
            if term.target not in found:
                found.append(term.target)
    return tuple(found)
