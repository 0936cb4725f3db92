"""The number check: every figure in the English must be one the source states."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.checks.english import Mention, NameNumber, extract_english
from pipeline.checks.prose import Fields, iter_fields, sentence_at, sentence_spans
from pipeline.checks.quantity import Quantity, closeness, describe, supports, units_agree
from pipeline.checks.source import SourceFacts
from pipeline.records import CheckFlag

_MAX_SUGGESTIONS = 3
_MAX_DISTANCE = 3.0  # orders of magnitude: a source figure 1,000 times off is no hint


def check_numbers(sources: Sequence[SourceFacts], fields: Fields) -> list[CheckFlag]:
    """Flag English figures, and numbered names, that no source supports."""
    quantities = [q for facts in sources for q in facts.quantities]
    flags: list[CheckFlag] = []
    for field, text in iter_fields(fields):
        spans = sentence_spans(text)
        mentions, names = extract_english(text)
        for mention in mentions:
            flag = _check_mention(field, text, spans, mention, quantities)
            if flag is not None:
                flags.append(flag)
        for name in names:
            flag = _check_name(field, text, spans, name, sources)
            if flag is not None:
                flags.append(flag)
    return flags


def _check_mention(
    field: str, text: str, spans: Sequence[tuple[int, int]], mention: Mention, quantities: Sequence[Quantity]
) -> CheckFlag | None:
    unsupported = [part for part in mention.parts if not any(supports(part, q) for q in quantities)]
    if not unsupported:
        return None
    return CheckFlag(
        kind="number",
        field=field,
        text=mention.text,
        sentence=sentence_at(text, spans, mention.start),
        message=f'"{mention.text}" does not match any figure in the source',
        suggestions=nearest(unsupported[0], quantities),
    )


def nearest(english: Quantity, quantities: Sequence[Quantity]) -> tuple[str, ...]:
    """The source figures the English most likely meant, best first (same kind, same digits, then size)."""
    ranked = sorted((q for q in quantities if units_agree(english, q)), key=lambda q: (closeness(english, q), q.start))
    seen: list[str] = []
    for quantity in ranked:
        if closeness(english, quantity)[2] > _MAX_DISTANCE:
            break
        shown = describe(quantity)
        if shown not in seen:
            seen.append(shown)
        if len(seen) == _MAX_SUGGESTIONS:
            break
    return tuple(seen)


def _check_name(
    field: str, text: str, spans: Sequence[tuple[int, int]], name: NameNumber, sources: Sequence[SourceFacts]
) -> CheckFlag | None:
    """ "GPT-4" passes when a source has it; it is flagged only when a source names another version."""
    squashed = re.sub(r"[\s\-_]", "", name.text.casefold())
    if any(squashed in facts.squashed for facts in sources):
        return None
    stem = re.match(r"[a-z]+", squashed)
    if stem is None or len(stem.group()) < 2:
        return None  # "7B", "R1": too short a stem to know which name it is
    other = re.compile(rf"(?<![A-Za-z]){re.escape(stem.group())}[\s\-_]?[0-9][A-Za-z0-9.\-]*", re.IGNORECASE)
    versions: list[str] = []
    for facts in sources:
        for match in other.finditer(facts.text):
            written = match.group().rstrip(".-")
            if written not in versions:
                versions.append(written)
    if not versions:
        return None
    return CheckFlag(
        kind="number",
        field=field,
        text=name.text,
        sentence=sentence_at(text, spans, name.start),
        message=f'"{name.text}" does not match the source, which names {", ".join(versions[:3])}',
        suggestions=tuple(versions[:_MAX_SUGGESTIONS]),
    )
