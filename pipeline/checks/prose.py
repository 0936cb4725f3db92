"""English prose helpers for the checks: fields, sentences, CJK character classes, glossary terms."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from pipeline.records import GlossaryEntry

Fields = Mapping[str, str | Sequence[str]]
GlossaryItem = tuple[str, str, str] | GlossaryEntry

# Han (with 〇 and 々), kana (incl. half-width), Hangul syllables and jamo: what cannot be English.
CJK_CLASS = (
    "\u3005\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\uff66-\uff9f\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\U00020000-\U0003134f"
)
CJK_CHAR = re.compile(f"[{CJK_CLASS}]")

# A full stop after these is not the end of a sentence.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr no nos co inc ltd corp vs etc e.g i.e u.s u.k u.n a.m p.m jan feb mar apr "
    "jun jul aug sep sept oct nov dec gov gen sen rep approx est dept fig".split()
)
_SENTENCE_END = re.compile(r"[.!?。！？]+[\"'”’)\]]*\s+|[。！？]+")


@dataclass(frozen=True)
class Term:
    """A glossary entry as the checks see it: every script form of the source, and the English."""

    source: str
    forms: frozenset[str]
    target: str
    kind: str


@dataclass(frozen=True)
class Sentence:
    field: str
    start: int  # offset of the sentence in the field's text
    text: str


def iter_fields(fields: Fields) -> Iterator[tuple[str, str]]:
    """Yield (field name, text): lists become key_points[0], key_points[1], ..."""
    for name, value in fields.items():
        if isinstance(value, str):
            yield name, value
        elif isinstance(value, Sequence):  # anything else a model sent is not prose: skip it
            for index, item in enumerate(value):
                if isinstance(item, str):
                    yield f"{name}[{index}]", item


@functools.lru_cache(maxsize=256)
def sentence_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Split English text into sentence spans, keeping "U.S.", "Mr." and decimals inside."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if end < len(text) and match.group().startswith(".") and _is_abbreviation(text, match.start(), end):
            continue
        if text[start:end].strip():
            spans.append((start, end))
        start = end
    if text[start:].strip():
        spans.append((start, len(text)))
    return tuple(spans)


def _is_abbreviation(text: str, dot: int, after: int) -> bool:
    word_start = dot
    while word_start > 0 and (text[word_start - 1].isalpha() or text[word_start - 1] == "."):
        word_start -= 1
    word = text[word_start:dot].lower()
    if word in ("no", "nos"):
        return text[after : after + 1].isdigit()  # "No. 1", but 'said "no." Then'
    return word in _ABBREVIATIONS or (len(word) == 1 and text[word_start].isupper())


def sentence_at(text: str, spans: Sequence[tuple[int, int]], offset: int) -> str:
    for start, end in spans:
        if start <= offset < end:
            return text[start:end].strip()
    return text.strip()


def build_terms(
    glossary: Sequence[GlossaryItem], source_text: str = "", source_simplified: str | None = None
) -> list[Term]:
    """Normalise glossary items; recover the other script's form from an aligned Simplified text."""
    aligned = source_simplified is not None and len(source_simplified) == len(source_text)
    terms: list[Term] = []
    kind: str
    for item in glossary:
        if isinstance(item, GlossaryEntry):
            source, target, kind = item.source, item.target, item.kind
            forms = {source, item.source_simplified}
        else:
            try:
                source, target, kind = (str(part) for part in item)
            except (TypeError, ValueError):
                continue  # malformed entry: nothing to check against
            forms = {source}
        source = source.strip()
        if not source:
            continue
        if aligned and source_simplified is not None:
            # OpenCC's character conversion keeps offsets, so a span maps across scripts.
            for text_a, text_b in ((source_text, source_simplified), (source_simplified, source_text)):
                at = text_a.find(source)
                if at >= 0:
                    forms.add(text_b[at : at + len(source)])
        terms.append(Term(source, frozenset(f.strip() for f in forms if f and f.strip()), target.strip(), kind))
    return terms
