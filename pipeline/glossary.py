"""Glossary rules: verify terms against the source, merge them, one English rendering per term."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

from pipeline.languages import profile
from pipeline.records import TERM_KINDS, ArticleResult, Document, GlossaryEntry, TermKind

Simplify = Callable[[str], str]
# Names are written in many legitimate ways, so the dictionary check only warns on common words.
_NAME_KINDS = frozenset({"person", "place", "organisation"})


class Lexicon(Protocol):
    """What the glossary needs from a dictionary (CC-CEDICT in practice)."""

    def pinyin(self, term: str) -> str: ...

    def disagrees(self, term: str, english: str) -> bool: ...


@dataclass
class Conflict:
    """Several English renderings were proposed for one term; `chosen` won."""

    source_simplified: str
    chosen: str
    candidates: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"term": self.source_simplified, "chosen": self.chosen, "candidates": self.candidates}


@dataclass
class RunTerm:
    """One merged glossary entry of a whole run."""

    entry: GlossaryEntry
    variants: list[str] = field(default_factory=list)  # every form seen, e.g. 通義千問 and 通义千问
    articles: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**self.entry.to_json(), "variants": self.variants, "articles": self.articles}


def term_key(simplified: str) -> str:
    """Match key: script differences are folded by OpenCC, case by casefold (DeepSeek = deepseek)."""
    return simplified.strip().casefold()


def locate_in_source(term: str, doc: Document, simplify: Simplify) -> str | None:
    """Return the term as written in the article, or None when the article does not contain it.

    A model sometimes answers in the other script (通义千问 for 通義千問); when the Simplified
    forms match we recover the exact original span instead of dropping a real term.
    """
    term = term.strip()
    if not term:
        return None
    if term in doc.text:
        return term
    if not profile(doc.language).opencc or len(doc.simplified) != len(doc.text):
        return None
    wanted = simplify(term)
    start = doc.simplified.find(wanted)
    if start < 0:
        return None
    return doc.text[start : start + len(wanted)]


def verify_terms(
    candidates: Iterable[Mapping[str, str]], doc: Document, simplify: Simplify
) -> tuple[list[GlossaryEntry], int]:
    """Keep candidates whose source occurs in the article; return them and the number dropped."""
    kept: list[GlossaryEntry] = []
    dropped = 0
    for candidate in candidates:
        source = locate_in_source(candidate.get("source", ""), doc, simplify)
        target = " ".join(candidate.get("target", "").split())
        if source is None or not target:
            dropped += 1
            continue
        kind = candidate.get("kind", "term")
        kind = kind if kind in TERM_KINDS else "term"
        kept.append(
            GlossaryEntry(
                source=source,
                source_simplified=simplify(source) if profile(doc.language).opencc else source,
                target=target,
                kind=kind,  # type: ignore[arg-type]  # checked against TERM_KINDS above
            )
        )
    return kept, dropped


def _pick(counts: Counter[str]) -> str:
    """Most frequent wins; ties go to the shorter, then alphabetically first, so runs repeat."""
    return min(counts, key=lambda value: (-counts[value], len(value), value))


def _choose_target(targets: Sequence[str]) -> tuple[str, dict[str, int]]:
    by_norm: Counter[str] = Counter(" ".join(t.split()).casefold() for t in targets if t)
    if not by_norm:
        return "", {}
    winner = _pick(by_norm)
    spellings: Counter[str] = Counter(t for t in targets if t.casefold() == winner)
    return _pick(spellings), dict(sorted(by_norm.items()))


def merge_entries(entries: Iterable[GlossaryEntry]) -> tuple[list[GlossaryEntry], list[Conflict]]:
    """Merge duplicates (by Simplified form) into one entry each, reporting target conflicts."""
    groups: dict[str, list[GlossaryEntry]] = {}
    for entry in entries:
        groups.setdefault(term_key(entry.source_simplified), []).append(entry)
    merged: list[GlossaryEntry] = []
    conflicts: list[Conflict] = []
    for group in groups.values():
        if len(group) == 1 and _settled(group[0]):
            merged.append(group[0])  # what the general case makes of it, without its five Counters
            continue
        target, candidates = _choose_target([e.target for e in group])
        if len(candidates) > 1:
            conflicts.append(Conflict(group[0].source_simplified, target, candidates))
        first = group[0]
        merged.append(
            replace(
                first,
                source=_pick(Counter(e.source for e in group)),
                target=target,
                kind=cast(TermKind, _pick(Counter(e.kind for e in group))),
                warnings=tuple(sorted({w for e in group for w in e.warnings})),
            )
        )
    return merged, conflicts


def _settled(entry: GlossaryEntry) -> bool:
    """A lone entry that merging leaves as it is: target in normal spacing, warnings sorted and unique."""
    target, warnings = entry.target, entry.warnings
    return " ".join(target.split()) == target and all(a < b for a, b in zip(warnings, warnings[1:], strict=False))


def harmonise_run(results: Sequence[ArticleResult]) -> tuple[list[ArticleResult], list[RunTerm], list[Conflict]]:
    """Give every term one English rendering across the run: new results, the run's terms, the conflicts.

    Offline entries with no English do not vote, so they never override a model's rendering.
    The results passed in are left as they are.
    """
    merged, conflicts = merge_entries(e for r in results for e in r.glossary)
    canonical = {term_key(e.source_simplified): e for e in merged}
    harmonised: list[ArticleResult] = []
    for result in results:
        glossary = []
        for entry in result.glossary:
            chosen = canonical[term_key(entry.source_simplified)]
            same = entry.target == chosen.target and entry.kind == chosen.kind
            glossary.append(entry if same else replace(entry, target=chosen.target, kind=chosen.kind))
        harmonised.append(result if glossary == result.glossary else replace(result, glossary=glossary))
    variants: dict[str, set[str]] = {}
    articles: dict[str, dict[str, None]] = {}  # insertion-ordered set of article ids
    for result in harmonised:
        for entry in result.glossary:
            key = term_key(entry.source_simplified)
            variants.setdefault(key, set()).add(entry.source)
            articles.setdefault(key, {})[result.id] = None
    run_terms: list[RunTerm] = []
    for entry in merged:
        key = term_key(entry.source_simplified)
        run_terms.append(RunTerm(entry, sorted(variants[key]), list(articles[key])))
    run_terms.sort(key=lambda t: (-len(t.articles), t.entry.source_simplified))
    return harmonised, run_terms, conflicts


def enrich_with_dictionary(entries: Iterable[GlossaryEntry], lexicon: Lexicon) -> list[GlossaryEntry]:
    """Add pinyin and warn where the English matches no dictionary sense of a common word."""
    enriched = []
    for entry in entries:
        pinyin = entry.pinyin or lexicon.pinyin(entry.source_simplified)
        warnings = entry.warnings
        if entry.kind not in _NAME_KINDS and entry.target and "disagrees_with_cedict" not in warnings:
            if lexicon.disagrees(entry.source_simplified, entry.target):
                warnings = (*warnings, "disagrees_with_cedict")
        enriched.append(replace(entry, pinyin=pinyin, warnings=warnings))
    return enriched
