"""Group articles about the same story by the key terms their glossaries share (no model needed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Container

from pipeline.glossary import term_key
from pipeline.records import ArticleResult, BriefingGroup

# Two articles share a story when this share of the smaller glossary is common to both.
SAME_STORY_OVERLAP = 0.5
_MIN_TERMS = 3
# Articles a term may link before it is too common to suggest a story (see group_by_shared_terms).
_MAX_POSTINGS = 64


def group_by_shared_terms(results: Collection[ArticleResult]) -> list[BriefingGroup]:
    """The stories several articles share (glossaries overlapping strongly); deterministic, in input order.

    Only groups of two or more are returned: an article on its own is in none.

    Candidate pairs come from an inverted index (term -> articles), so articles that share no
    term are never compared: the cost follows the shared terms, not the square of the run.
    Two passes over `results` (a list, or the run's spilled store): terms are held as small
    numbers, and only the labels of multi-article groups count their terms.
    """
    numbers: dict[str, int] = {}
    terms: list[frozenset[int]] = []
    for result in results:
        terms.append(
            frozenset(numbers.setdefault(term_key(e.source_simplified), len(numbers)) for e in result.glossary)
        )
    parent = list(range(len(terms)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    index: dict[int, list[int]] = {}
    for i, found in enumerate(terms):
        if len(found) >= _MIN_TERMS:
            for term in found:
                index.setdefault(term, []).append(i)
    # A term in very many articles (中国, 美国) names no one story; comparing every pair that shares it
    # would make the run quadratic. Such terms still count in the overlap of pairs found otherwise.
    common = {term for term, ids in index.items() if len(ids) > _MAX_POSTINGS}
    for i, found in enumerate(terms):
        if len(found) < _MIN_TERMS:
            continue
        candidates = {j for term in found - common for j in index[term] if j > i}
        for j in sorted(candidates):
            if len(found & terms[j]) / min(len(found), len(terms[j])) >= SAME_STORY_OVERLAP:
                parent[find(j)] = find(i)
    del index, terms
    sizes = Counter(find(i) for i in range(len(parent)))
    groups: dict[int, _Group] = {}
    for i, result in enumerate(results):
        root = find(i)
        if sizes[root] < 2:
            continue  # an article on its own gets its own section after the groups (render.briefing_markdown)
        group = groups.get(root)
        if group is None:
            group = groups[root] = _Group(result.title)
        group.add(result)
    return [BriefingGroup(g.label(), g.ids) for g in groups.values()]


class _Group:
    """One shared story as its members stream past: their ids and terms."""

    def __init__(self, first_title: str) -> None:
        self.first_title = first_title
        self.ids: list[str] = []
        self.shared: Counter[str] = Counter()

    def add(self, result: ArticleResult) -> None:
        self.ids.append(result.id)
        # Sorted, so that ties are broken the same way in every process (sets follow the hash seed).
        self.shared.update(sorted({e.target or e.source for e in result.glossary}))

    def label(self) -> str:
        common = [t for t, n in self.shared.most_common(3) if n > 1]
        return "Related coverage: " + ", ".join(common) if common else self.first_title


def clean_groups(groups: list[BriefingGroup], known: Container[str]) -> list[BriefingGroup]:
    """The model's groups with unknown and repeated ids dropped, so that an article is in at most one.

    Articles in no group are not listed: the briefing gives each its own section after the groups,
    so a run of any size holds nothing per article here (the model's reply is bounded).
    """
    seen: set[str] = set()
    cleaned: list[BriefingGroup] = []
    for group in groups:
        ids = [i for i in dict.fromkeys(group.article_ids) if i in known and i not in seen]
        seen.update(ids)
        if ids:
            cleaned.append(BriefingGroup(group.label, ids))
    return cleaned
