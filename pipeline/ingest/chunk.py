"""Split documents into token-bounded chunks: at sentence ends, then clause breaks, then hard.

Chunks are consecutive slices of the text: joined in order they give the text back exactly.
The work is linear in the text: each sentence is counted once, and where a byte-pair tokenizer can
merge across the join of two sentences only the few characters around the join are counted again
(see `pipeline.ingest.joins`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.errors import ConfigError
from pipeline.ingest.joins import first_join, last_join
from pipeline.ingest.tokens import ADDITIVE_AT_JOINS, TokenCounter
from pipeline.records import Document
from pipeline.text import CLAUSE_BREAK_RE, SENTENCE_BREAK_RE

# One character is at most 4 UTF-8 bytes, hence at most 4 tokens: the smallest budget we can honour.
MIN_CHUNK_TOKENS = 4
# Unbroken runs of up to this many chunks' worth of tokens are cut by bisection over the rest of
# the run (the cuts chunking always made); longer ones by galloping, which stays linear.
_BISECT_CHUNKS = 4


@dataclass(frozen=True)
class Chunk:
    """One model-sized piece of a document."""

    document: str
    index: int
    text: str
    tokens: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Unit:
    """A slice text[start:end] that fits the budget on its own, with its token count."""

    start: int
    end: int
    tokens: int


def _breaks(text: str, start: int, end: int, boundary: re.Pattern[str]) -> list[tuple[int, int]]:
    """Cut text[start:end] after every match of `boundary`, keeping every character."""
    spans: list[tuple[int, int]] = []
    at = start
    for match in boundary.finditer(text, start, end):
        if match.end() > at:
            spans.append((at, match.end()))
            at = match.end()
    if at < end:
        spans.append((at, end))
    return spans


def _longest_fit(text: str, start: int, end: int, max_tokens: int, count: TokenCounter, guess: int) -> _Unit:
    """A prefix of text[start:end] that fits, and would not with one more character (one at least).

    Tokens grow about linearly with the length of a run, so each probe aims where the counts so far
    put the budget (from `guess`, the previous cut of the same run); every other probe halves the
    interval instead, which bounds the search when they do not. A cut costs a few counts of
    chunk-sized strings, not counts of the whole run.
    """
    limit = end - start
    counted = {0: 0}
    low, high = 0, limit + 1  # low fits (none is nothing), high does not (one past the run)
    probe = max(1, min(guess, limit))
    aim = True
    while True:
        counted[probe] = count(text[start : start + probe])
        if counted[probe] <= max_tokens:
            low = probe
        else:
            high = probe
        if high - low <= 1:
            break
        if aim and high <= limit:  # between two counts
            probe = low + (max_tokens - counted[low]) * (high - low) // (counted[high] - counted[low])
        elif aim and counted[low]:  # beyond the last count that fits
            probe = low * max_tokens // counted[low]
        else:
            probe = (low + high) // 2
        probe = min(max(probe, low + 1), high - 1)
        aim = not aim
    if low == 0:  # not even one character fits: take it anyway, as the bisection always did
        return _Unit(start, start + 1, counted[1])
    return _Unit(start, start + low, counted[low])


def _bisect(text: str, start: int, end: int, max_tokens: int, count: TokenCounter) -> _Unit:
    """The prefix of text[start:end] found by bisecting over its whole length (at least one character).

    Token counts are not monotonic in the prefix length ("aaaa" can take fewer tokens than "aaa"),
    so where they wobble this finds one of several prefixes that fit; it is the cut chunking has
    always made, kept for runs short enough to afford it.
    """
    low, high = 1, end - start
    while low < high:
        middle = (low + high + 1) // 2
        if count(text[start : start + middle]) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return _Unit(start, start + low, count(text[start : start + low]))


def _hard_units(text: str, start: int, end: int, max_tokens: int, count: TokenCounter, tokens: int) -> list[_Unit]:
    """Last resort for a run with no break in it (of `tokens` tokens): the longest prefixes that fit.

    A run of a few chunks is cut by bisection over what is left of it, as it always was; a longer
    one by galloping, which is linear in the run.
    """
    units: list[_Unit] = []
    guess = max_tokens
    while start < end:
        if tokens <= _BISECT_CHUNKS * max_tokens:
            unit = _bisect(text, start, end, max_tokens, count)
        else:
            unit = _longest_fit(text, start, end, max_tokens, count, guess)
            guess = unit.end - unit.start
        units.append(unit)
        start = unit.end
    return units


def _units(text: str, max_tokens: int, count: TokenCounter) -> list[_Unit]:
    """Sentences, with any sentence over the budget broken at clauses, then hard."""
    units: list[_Unit] = []
    for start, end in _breaks(text, 0, len(text), SENTENCE_BREAK_RE):
        tokens = count(text[start:end])
        if tokens <= max_tokens:
            units.append(_Unit(start, end, tokens))
            continue
        for clause_start, clause_end in _breaks(text, start, end, CLAUSE_BREAK_RE):
            tokens = count(text[clause_start:clause_end])
            if tokens <= max_tokens:
                units.append(_Unit(clause_start, clause_end, tokens))
            else:
                units.extend(_hard_units(text, clause_start, clause_end, max_tokens, count, tokens))
    return units


class _Packer:
    """The chunk being filled, text[start:end], with what it takes to count it with one more unit.

    `join` is the chunk's last join (or its start) and `head` the tokens of text[start:join]: a
    unit appended can only change how text[join:] is encoded, so only that is counted again, up to
    the unit's own first join.
    """

    def __init__(self, text: str, count: TokenCounter) -> None:
        self.text = text
        self.count = count
        self.start = self.end = self.join = self.head = 0

    def open(self, unit: _Unit) -> None:
        self.start, self.end = unit.start, unit.end
        self.join, self.head = unit.start, 0
        self._advance_join(unit, unit.tokens)

    def tokens_with(self, unit: _Unit) -> int:
        """Tokens in the chunk with `unit` appended."""
        if self.join == self.end:  # the chunk ends at a join: counts add up
            return self.head + unit.tokens
        split = first_join(self.text, unit.start, unit.end)
        if split is None:
            return self.head + self.count(self.text[self.join : unit.end])
        # text[join:unit.end] is counted as text[join:split] plus the unit's rest after `split`,
        # which is the unit's tokens less those of its head (both sides of a join add up).
        unit_head = self.text[unit.start : split]
        joined = self.count(self.text[self.join : split])
        return self.head + joined + unit.tokens - self.count(unit_head)

    def append(self, unit: _Unit, tokens: int) -> None:
        """Take `unit` into the chunk, whose count is now `tokens` (from tokens_with)."""
        self.end = unit.end
        self._advance_join(unit, tokens)

    def _advance_join(self, unit: _Unit, tokens: int) -> None:
        # Points before the unit's start were looked at when the earlier units came in.
        join = last_join(self.text, max(self.join, unit.start), self.end)
        if join is None:
            return
        rest = self.count(self.text[join : self.end]) if join < self.end else 0
        self.join, self.head = join, tokens - rest


def _pack(text: str, units: list[_Unit], max_tokens: int, count: TokenCounter) -> list[tuple[str, int]]:
    """Pack units greedily: a unit goes to the current chunk if the chunk stays within the budget."""
    if not units:
        return []
    chunks: list[tuple[int, int, int]] = []
    packer = _Packer(text, count)
    packer.open(units[0])
    tokens = units[0].tokens
    for unit in units[1:]:
        joined = packer.tokens_with(unit)
        if joined > max_tokens:
            chunks.append((packer.start, packer.end, tokens))
            packer.open(unit)
            tokens = unit.tokens
        else:
            packer.append(unit, joined)
            tokens = joined
    chunks.append((packer.start, packer.end, tokens))
    return [(text[start:end], tokens) for start, end, tokens in chunks]


def _pack_exactly(text: str, units: list[_Unit], max_tokens: int, count: TokenCounter) -> list[tuple[str, int]]:
    """Pack by counting the growing chunk after each unit: slow, for counters that merge anywhere."""
    pieces: list[str] = []
    current = ""
    for unit in units:
        piece = text[unit.start : unit.end]
        if current and count(current + piece) > max_tokens:
            pieces.append(current)
            current = ""
        current += piece
    if current:
        pieces.append(current)
    return [(piece, count(piece)) for piece in pieces]


def split_counted(text: str, max_tokens: int, count: TokenCounter) -> list[tuple[str, int]]:
    """Like split_text, with each piece's token count."""
    if max_tokens < MIN_CHUNK_TOKENS:
        raise ConfigError(f"max_tokens: must be at least {MIN_CHUNK_TOKENS} (one character can take 4 tokens)")
    units = _units(text, max_tokens, count)
    # Counts add up across joins for cl100k_base (and len); any other counter may merge anywhere,
    # so for it the growing chunk is recounted, which gives the same chunks, slowly.
    if count in ADDITIVE_AT_JOINS:
        return _pack(text, units, max_tokens, count)
    return _pack_exactly(text, units, max_tokens, count)


def split_text(text: str, max_tokens: int, count: TokenCounter) -> list[str]:
    """Pack sentences greedily into pieces of at most `max_tokens` tokens, in order, losing nothing."""
    return [piece for piece, _ in split_counted(text, max_tokens, count)]


def split_balanced(text: str, max_tokens: int, count: TokenCounter) -> list[tuple[str, int]]:
    """As few pieces as greedy packing makes, but of even size where sentences allow.

    Greedy packing leaves a runt: a 3,100-token article at 3,000 gives 2,980 + 120, and a model
    asked for three key points of 120 tokens invents some. Packing again at the even share (plus a
    little slack for sentence ends) gives two halves in the same number of requests.
    """
    greedy = split_counted(text, max_tokens, count)
    if len(greedy) < 2:
        return greedy
    share = -(-sum(tokens for _, tokens in greedy) // len(greedy))
    for slack in (1.05, 1.15, 1.3):
        budget = min(max_tokens, max(MIN_CHUNK_TOKENS, int(share * slack) + 1))  # never under the floor
        even = split_counted(text, budget, count)
        if len(even) <= len(greedy):
            return even
        if budget == max_tokens:
            break
    return greedy


def chunk_document(doc: Document, max_tokens: int, count: TokenCounter) -> list[Chunk]:
    return [
        Chunk(doc.id, index, piece, tokens)
        for index, (piece, tokens) in enumerate(split_balanced(doc.text, max_tokens, count))
    ]
