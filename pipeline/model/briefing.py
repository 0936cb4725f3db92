"""The run's briefing from a model: one request for an overview and the story groups."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Collection, Iterable
from typing import Any, Protocol

from pipeline.grouping import clean_groups
from pipeline.model.client import JsonRequest, ModelClient
from pipeline.model.english import overview_check
from pipeline.model.prompts import Prompt, delimit
from pipeline.records import ArticleResult, Briefing, BriefingGroup
from pipeline.results import ResultStore

# The briefing request carries summaries up to this many tokens, then titles only.
_BRIEFING_BUDGET_TOKENS = 6000


# A token is at least one byte, and in prose seldom more than this many: a longer text is over budget
# without loading the tokenizer (and the request of a huge run is built without holding every summary).
_MAX_BYTES_PER_TOKEN = 8


def _fits(items: list[dict[str, str]], count_tokens: Any) -> bool:
    text = json.dumps(items, ensure_ascii=False)
    size = len(text.encode("utf-8"))
    if size <= _BRIEFING_BUDGET_TOKENS:
        return True
    return size <= _BRIEFING_BUDGET_TOKENS * _MAX_BYTES_PER_TOKEN and count_tokens(text) <= _BRIEFING_BUDGET_TOKENS


def _prefix(results: Iterable[ArticleResult], item: Any) -> tuple[list[dict[str, str]], bool]:
    """Items while their JSON is within the byte bound; and whether every result made one."""
    items: list[dict[str, str]] = []
    size = 2
    for result in results:
        entry = item(result)
        size += len(json.dumps(entry, ensure_ascii=False).encode("utf-8")) + 2
        if size > _BRIEFING_BUDGET_TOKENS * _MAX_BYTES_PER_TOKEN:
            return items, False
        items.append(entry)
    return items, True


def _full(result: ArticleResult) -> dict[str, str]:
    return {"id": result.id, "title": result.title, "summary": result.summary}


def _title(result: ArticleResult) -> dict[str, str]:
    return {"id": result.id, "title": result.title}


def _briefing_items(results: Iterable[ArticleResult], count_tokens: Any) -> list[dict[str, str]]:
    """Summaries when they fit the budget, else titles; for very large runs, as many titles as fit.

    `results` is read at most twice and never held whole (it may be the run's spilled store).
    Articles left out of the request still get their section in the briefing (render.briefing_markdown).
    """
    full, whole = _prefix(results, _full)
    if whole and _fits(full, count_tokens):
        return full
    titles, whole = _prefix(results, _title)
    if whole and _fits(titles, count_tokens):
        return titles
    kept: list[dict[str, str]] = []
    used = 0
    for item in titles:
        used += count_tokens(json.dumps(item, ensure_ascii=False)) + 2  # separators
        if used > _BRIEFING_BUDGET_TOKENS:
            break
        kept.append(item)
    return kept


class _Memo(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...


def _remembered_items(results: Iterable[ArticleResult], count_tokens: Any, memo: _Memo | None) -> list[dict[str, str]]:
    """_briefing_items, with its choice remembered by the articles' ids, titles and summaries.

    A re-run of the same articles then builds the same request without counting a token (loading
    the tokenizer alone costs a re-run more than everything else the briefing does).
    """
    if memo is None:
        return _briefing_items(results, count_tokens)
    from pipeline.cache import cache_key

    digest = hashlib.sha256()
    for result in results:
        digest.update(json.dumps(_full(result), ensure_ascii=False).encode("utf-8") + b"\n")
    key = cache_key({"briefing_items": digest.hexdigest(), "budget": _BRIEFING_BUDGET_TOKENS, "v": 1})
    known = memo.get(key)
    if known is not None and known.get("kind") in ("full", "titles") and isinstance(known.get("count"), int):
        items, _ = _prefix(results, _full if known["kind"] == "full" else _title)
        return items[: known["count"]]
    items = _briefing_items(results, count_tokens)
    memo.put(key, {"kind": "full" if items and "summary" in items[0] else "titles", "count": len(items)})
    return items


def briefing_request(prompt: Prompt, items: list[dict[str, str]], max_tokens: int, temperature: float) -> JsonRequest:
    text = json.dumps(items, ensure_ascii=False, indent=1)
    return JsonRequest(
        prompt_id=prompt.id,
        prompt_hash=prompt.hash,
        messages=prompt.messages({}, {"articles_json": delimit(text, "articles")}),
        schema_name=prompt.name,
        schema=prompt.schema,
        max_tokens=max_tokens,
        temperature=temperature,
        check=overview_check,
    )


async def model_briefing(
    client: ModelClient,
    prompt: Prompt,
    results: Collection[ArticleResult],
    count_tokens: Any,
    max_tokens: int,
    temperature: float,
) -> Briefing:
    """Ask the model for the overview and the story groups (one request).

    `results` may be the run's spilled store: it is read a few times, never held whole.
    """
    # In threads: on a large run, reading every result (and counting tokens) would stall the loop.
    items = await asyncio.to_thread(_remembered_items, results, count_tokens, client.cache)
    request = briefing_request(prompt, items, max_tokens, temperature)
    result = await client.complete_json(request)
    groups = [BriefingGroup(str(g["label"]), [str(a) for a in g["articles"]]) for g in result.data["groups"]]
    # The store answers `in` by id; any other collection (a library caller's list) is indexed once.
    known = results if isinstance(results, ResultStore) else {r.id for r in results}
    groups = clean_groups(groups, known)
    covered = tuple(item["id"] for item in items)
    return Briefing(result.data["overview"], groups, result.usage, prompt.record(), covered=covered)
