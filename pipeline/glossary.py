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


def _normal(target: str) -> str:
    return " ".join(target.split()).casefold()


class _Votes:
    """Every entry seen for one term, as counts: memory follows the distinct renderings, not the articles."""

    __slots__ = ("first", "seen", "targets", "sources", "kinds", "warnings", "articles")

    def __init__(self, first: GlossaryEntry) -> None:
        self.first = first
        self.seen = 0
        # Made at the second entry: most terms of a run occur once, and keep no Counters.
        self.targets: Counter[str] | None = None
        self.sources: Counter[str] = Counter()
        self.kinds: Counter[str] | None = None
        self.warnings: set[str] | None = None
        self.articles: dict[str, None] = {}  # insertion-ordered set of article ids

    def _tallies(self) -> tuple[Counter[str], Counter[str], set[str]]:
        """Targets, kinds and warnings counted so far, made from the first entry when first needed."""
        if self.targets is None or self.kinds is None or self.warnings is None:
            first = self.first
            self.targets, self.kinds, self.warnings = (
                Counter([first.target]),
                Counter([first.kind]),
                set(first.warnings),
            )
        return self.targets, self.kinds, self.warnings

    def add(self, entry: GlossaryEntry) -> None:
        self.seen += 1
        self.sources[entry.source] += 1
        if self.seen >= 2:
            targets, kinds, warnings = self._tallies()
            targets[entry.target] += 1
            kinds[entry.kind] += 1
            warnings.update(entry.warnings)

    def merged(self) -> tuple[GlossaryEntry, Conflict | None]:
        first = self.first
        if self.seen == 1 and _settled(first):
            return first, None  # what the general case makes of it, without its Counters
        targets, kinds, warnings = self._tallies()
        by_norm: Counter[str] = Counter()
        for target, count in targets.items():
            if target:
                by_norm[_normal(target)] += count
        if by_norm:
            winner = _pick(by_norm)
            target = _pick(Counter({t: n for t, n in targets.items() if t and _normal(t) == winner}))
        else:
            target = ""
        conflict = (
            Conflict(first.source_simplified, target, dict(sorted(by_norm.items()))) if len(by_norm) > 1 else None
        )
        entry = replace(
            first,
            source=_pick(self.sources),
            target=target,
            kind=cast(TermKind, _pick(kinds)),
            warnings=tuple(sorted(warnings)),
        )
        return entry, conflict


def merge_entries(entries: Iterable[GlossaryEntry]) -> tuple[list[GlossaryEntry], list[Conflict]]:
    """Merge duplicates (by Simplified form) into one entry each, reporting target conflicts."""
    glossary = RunGlossary()
    for entry in entries:
        glossary.vote(entry)
    _, conflicts = glossary.finish()
    return [t.entry for t in glossary.in_order()], conflicts


def _settled(entry: GlossaryEntry) -> bool:
    """A lone entry that merging leaves as it is: target in normal spacing, warnings sorted and unique."""
    target, warnings = entry.target, entry.warnings
    return " ".join(target.split()) == target and all(a < b for a, b in zip(warnings, warnings[1:], strict=False))


class RunGlossary:
    """The run's glossary, built one article at a time: one English rendering per term.

    Two passes over the run's results: `add` each (votes), `finish` (the run's terms and the
    conflicts), then `apply` to each result (its glossary in the chosen renderings). Offline
    entries with no English do not vote, so they never override a model's rendering.
    """

    def __init__(self) -> None:
        self._votes: dict[str, _Votes] = {}
        self._chosen: dict[str, GlossaryEntry] | None = None
        self._terms: list[RunTerm] = []

    def vote(self, entry: GlossaryEntry, article_id: str | None = None) -> None:
        key = term_key(entry.source_simplified)
        votes = self._votes.get(key)
        if votes is None:
            votes = self._votes[key] = _Votes(entry)
        votes.add(entry)
        if article_id is not None:
            votes.articles[article_id] = None

    def add(self, result: ArticleResult) -> None:
        for entry in result.glossary:
            self.vote(entry, result.id)

    def finish(self) -> tuple[list[RunTerm], list[Conflict]]:
        """The run's terms (most shared first) and the conflicts, in the order the terms were first seen."""
        chosen: dict[str, GlossaryEntry] = {}
        conflicts: list[Conflict] = []
        terms: list[RunTerm] = []
        for key, votes in self._votes.items():
            entry, conflict = votes.merged()
            chosen[key] = entry
            if conflict is not None:
                conflicts.append(conflict)
            terms.append(RunTerm(entry, sorted(votes.sources), list(votes.articles)))
        self._chosen, self._terms = chosen, terms
        ranked = sorted(terms, key=lambda t: (-len(t.articles), t.entry.source_simplified))
        return ranked, conflicts

    def in_order(self) -> list[RunTerm]:
        """The terms in the order they were first seen (after finish)."""
        return self._terms

    def apply(self, result: ArticleResult) -> ArticleResult:
        """The result with every term in the run's rendering (the same object when nothing changes)."""
        assert self._chosen is not None, "finish() first"
        glossary = []
        for entry in result.glossary:
            chosen = self._chosen[term_key(entry.source_simplified)]
            same = entry.target == chosen.target and entry.kind == chosen.kind
            glossary.append(entry if same else replace(entry, target=chosen.target, kind=chosen.kind))
        return result if glossary == result.glossary else replace(result, glossary=glossary)


def harmonise_run(results: Sequence[ArticleResult]) -> tuple[list[ArticleResult], list[RunTerm], list[Conflict]]:
    """Give every term one English rendering across the run: new results, the run's terms, the conflicts.

    The results passed in are left as they are.
    """
    glossary = RunGlossary()
    for result in results:
        glossary.add(result)
    terms, conflicts = glossary.finish()
    return [glossary.apply(r) for r in results], terms, conflicts


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
