"""The run's briefing: an overview across articles and groups of articles about the same story."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pipeline.glossary import term_key
from pipeline.model.prompts import delimit, load_prompt
from pipeline.output.render import BriefingGroup
from pipeline.records import ArticleResult, Usage

if TYPE_CHECKING:
    from pipeline.model.client import ModelClient

# Two articles share a story when this share of the smaller glossary is common to both.
_SAME_STORY_OVERLAP = 0.5
# The briefing request carries summaries up to this many tokens, then titles only.
_BRIEFING_BUDGET_TOKENS = 6000


def _terms(result: ArticleResult) -> set[str]:
    return {term_key(e.source_simplified) for e in result.glossary}


def group_by_shared_terms(results: Sequence[ArticleResult]) -> list[BriefingGroup]:
    """Group articles whose glossaries overlap strongly (deterministic; no model needed)."""
    parent = list(range(len(results)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    terms = [_terms(r) for r in results]
    for i in range(len(results)):
        for j in range(i + 1, len(results)):
            smaller = min(len(terms[i]), len(terms[j]))
            if smaller >= 3 and len(terms[i] & terms[j]) / smaller >= _SAME_STORY_OVERLAP:
                parent[find(j)] = find(i)
    members: dict[int, list[ArticleResult]] = {}
    for i, result in enumerate(results):
        members.setdefault(find(i), []).append(result)
    return [BriefingGroup(_label(group), [r.id for r in group]) for group in members.values()]


def _label(group: list[ArticleResult]) -> str:
    if len(group) == 1:
        return group[0].title
    shared = Counter(t for r in group for t in {e.target or e.source for e in r.glossary})
    common = [t for t, n in shared.most_common(3) if n > 1]
    return "Related coverage: " + ", ".join(common) if common else group[0].title


def offline_overview(results: Sequence[ArticleResult]) -> str:
    """Say what an offline run found, from the glossaries alone."""
    counts = Counter(f"{e.source} ({e.target})" if e.target else e.source for r in results for e in r.glossary[:10])
    top = ", ".join(term for term, _ in counts.most_common(12))
    return (
        f"Offline keyword triage of {len(results)} article(s); no model summarised them. "
        f"Most frequent key terms: {top or 'none found'}."
    )


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


def _fits(items: list[dict[str, str]], count_tokens: Any) -> bool:
    text = json.dumps(items, ensure_ascii=False)
    # A token is at least one byte, so a short text fits without loading the tokenizer.
    return len(text.encode("utf-8")) <= _BRIEFING_BUDGET_TOKENS or count_tokens(text) <= _BRIEFING_BUDGET_TOKENS


def _briefing_items(results: Sequence[ArticleResult], count_tokens: Any) -> list[dict[str, str]]:
    """Summaries when they fit the budget, else titles; for very large runs, as many titles as fit.

    Articles left out of the request still get their section in the briefing (complete_groups).
    """
    full = [{"id": r.id, "title": r.title, "summary": r.summary} for r in results]
    if _fits(full, count_tokens):
        return full
    titles = [{"id": r.id, "title": r.title} for r in results]
    if _fits(titles, count_tokens):
        return titles
    kept: list[dict[str, str]] = []
    used = 0
    for item in titles:
        used += count_tokens(json.dumps(item, ensure_ascii=False)) + 2  # separators
        if used > _BRIEFING_BUDGET_TOKENS:
            break
        kept.append(item)
    return kept


async def model_briefing(
    client: ModelClient,
    results: Sequence[ArticleResult],
    count_tokens: Any,
    max_output_tokens: int,
    temperature: float,
    usage: Usage,
) -> tuple[str, list[BriefingGroup]]:
    """Ask the model for the overview and the story groups (one request)."""
    from pipeline.model.client import JsonRequest
    from pipeline.model.summarize import add_call_usage

    prompt = load_prompt("briefing")
    items = json.dumps(_briefing_items(results, count_tokens), ensure_ascii=False, indent=1)
    request = JsonRequest(
        prompt_id=prompt.id,
        prompt_hash=prompt.hash,
        messages=prompt.messages({}, {"articles_json": delimit(items, "articles")}),
        schema_name=prompt.name,
        schema=prompt.schema,
        max_tokens=max_output_tokens,
        temperature=temperature,
    )
    result = await client.complete_json(request)
    add_call_usage(usage, result)
    groups = [BriefingGroup(g["label"], list(g["articles"])) for g in result.data["groups"]]
    return result.data["overview"], complete_groups(groups, results)
