"""Group articles about the same story by the key terms their glossaries share (no model needed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pipeline.glossary import term_key
from pipeline.records import ArticleResult, BriefingGroup

# Two articles share a story when this share of the smaller glossary is common to both.
SAME_STORY_OVERLAP = 0.5
_MIN_TERMS = 3
# Articles a term may link before it is too common to suggest a story (see group_by_shared_terms).
_MAX_POSTINGS = 64


def _terms(result: ArticleResult) -> set[str]:
    return {term_key(e.source_simplified) for e in result.glossary}


def group_by_shared_terms(results: Sequence[ArticleResult]) -> list[BriefingGroup]:
    """Group articles whose glossaries overlap strongly; deterministic, in input order.

    Candidate pairs come from an inverted index (term -> articles), so articles that share no
    term are never compared: the cost follows the shared terms, not the square of the run.
    """
    parent = list(range(len(results)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    terms = [_terms(r) for r in results]
    index: dict[str, list[int]] = {}
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
        shared = Counter({j: len(found & terms[j]) for j in candidates})
        for j in sorted(shared):
            if shared[j] / min(len(found), len(terms[j])) >= SAME_STORY_OVERLAP:
                parent[find(j)] = find(i)
    members: dict[int, list[ArticleResult]] = {}
    for i, result in enumerate(results):
        members.setdefault(find(i), []).append(result)
    return [BriefingGroup(_label(group), [r.id for r in group]) for group in members.values()]


def _label(group: list[ArticleResult]) -> str:
    if len(group) == 1:
        return group[0].title
    # Sorted, so that ties are broken the same way in every process (sets follow the hash seed).
    shared = Counter(t for r in group for t in sorted({e.target or e.source for e in r.glossary}))
    common = [t for t, n in shared.most_common(3) if n > 1]
    return "Related coverage: " + ", ".join(common) if common else group[0].title


def complete_groups(groups: list[BriefingGroup], results: Sequence[ArticleResult]) -> list[BriefingGroup]:
    """Keep each article in exactly one group, whatever the model answered."""
    known = {r.id for r in results}
    seen: set[str] = set()
    cleaned: list[BriefingGroup] = []
    for group in groups:
        ids = [i for i in group.article_ids if i in known and i not in seen]
        seen.update(ids)
        if ids:
            cleaned.append(BriefingGroup(group.label, ids))
    cleaned += [BriefingGroup(r.title, [r.id]) for r in results if r.id not in seen]
    return cleaned
