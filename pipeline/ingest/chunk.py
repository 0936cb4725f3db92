"""Split documents into token-bounded chunks: at sentence ends, then clause breaks, then hard.

Chunks are consecutive slices of the text: joined in order they give the text back exactly.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.ingest.tokens import TokenCounter
from pipeline.records import Document

# A sentence ends at CJK or Latin terminal punctuation (with any closing quotes or brackets after
# it), or at a line break. Latin "." only counts before whitespace, so 3.5 and Z.ai stay whole.
_CLOSERS = "”’」』》〉）)]\"'"
_SENTENCE_END = re.compile(
    rf"(?:[。！？；…!?]+[{re.escape(_CLOSERS)}]*|\.+[{re.escape(_CLOSERS)}]*(?=\s)|;(?=\s))\s*|\n+"
)
_CLAUSE_END = re.compile(r"[，、,：:—]+\s*|\s+")
# One character is at most 4 UTF-8 bytes, hence at most 4 tokens: the smallest budget we can honour.
MIN_CHUNK_TOKENS = 4


@dataclass(frozen=True)
class Chunk:
    """One model-sized piece of a document."""

    document: str
    index: int
    text: str
    tokens: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _pieces(text: str, boundary: re.Pattern[str]) -> list[str]:
    """Cut `text` after every match of `boundary`, keeping every character."""
    pieces: list[str] = []
    start = 0
    for match in boundary.finditer(text):
        if match.end() > start:
            pieces.append(text[start : match.end()])
            start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _hard_split(text: str, max_tokens: int, count: TokenCounter) -> list[str]:
    """Last resort for a run with no break in it: the longest prefixes that fit."""
    parts: list[str] = []
    while text:
        low, high = 1, len(text)
        while low < high:  # longest prefix within the budget (at least one character)
            middle = (low + high + 1) // 2
            if count(text[:middle]) <= max_tokens:
                low = middle
            else:
                high = middle - 1
        parts.append(text[:low])
        text = text[low:]
    return parts


def _units(text: str, max_tokens: int, count: TokenCounter) -> list[str]:
    """Sentences, with any sentence over the budget broken at clauses, then hard."""
    units: list[str] = []
    for sentence in _pieces(text, _SENTENCE_END):
        if count(sentence) <= max_tokens:
            units.append(sentence)
            continue
        for clause in _pieces(sentence, _CLAUSE_END):
            if count(clause) <= max_tokens:
                units.append(clause)
            else:
                units.extend(_hard_split(clause, max_tokens, count))
    return units


def split_text(text: str, max_tokens: int, count: TokenCounter) -> list[str]:
    """Pack sentences greedily into pieces of at most `max_tokens` tokens, in order, losing nothing."""
    if max_tokens < MIN_CHUNK_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_CHUNK_TOKENS} (one character can take 4 tokens)")
    pieces: list[str] = []
    current = ""
    for unit in _units(text, max_tokens, count):
        if current and count(current + unit) > max_tokens:
            pieces.append(current)
            current = ""
        current += unit
    if current:
        pieces.append(current)
    return pieces


def chunk_document(doc: Document, max_tokens: int, count: TokenCounter) -> list[Chunk]:
    return [
        Chunk(doc.id, index, piece, count(piece)) for index, piece in enumerate(split_text(doc.text, max_tokens, count))
    ]
