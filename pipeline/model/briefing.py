"""The run's briefing from a model: one request for an overview and the story groups."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pipeline.grouping import complete_groups
from pipeline.model.client import JsonRequest, ModelClient
from pipeline.model.english import overview_check
from pipeline.model.prompts import Prompt, delimit
from pipeline.records import ArticleResult, Briefing, BriefingGroup

# The briefing request carries summaries up to this many tokens, then titles only.
_BRIEFING_BUDGET_TOKENS = 6000


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


def briefing_request(
    prompt: Prompt, results: Sequence[ArticleResult], count_tokens: Any, max_tokens: int, temperature: float
) -> JsonRequest:
    items = json.dumps(_briefing_items(results, count_tokens), ensure_ascii=False, indent=1)
    return JsonRequest(
        prompt_id=prompt.id,
        prompt_hash=prompt.hash,
        messages=prompt.messages({}, {"articles_json": delimit(items, "articles")}),
        schema_name=prompt.name,
        schema=prompt.schema,
        max_tokens=max_tokens,
        temperature=temperature,
        check=overview_check,
    )


async def model_briefing(
    client: ModelClient,
    prompt: Prompt,
    results: Sequence[ArticleResult],
    count_tokens: Any,
    max_tokens: int,
    temperature: float,
) -> Briefing:
    """Ask the model for the overview and the story groups (one request)."""
    request = briefing_request(prompt, results, count_tokens, max_tokens, temperature)
    result = await client.complete_json(request)
    groups = [BriefingGroup(str(g["label"]), [str(a) for a in g["articles"]]) for g in result.data["groups"]]
    return Briefing(result.data["overview"], complete_groups(groups, results), result.usage, prompt.record())
