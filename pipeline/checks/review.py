"""Checks applied to result records: one article, the run's names, the briefing's overview."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from pipeline.checks.guard import ArticleProse, check_article, check_overview, check_run_names
from pipeline.records import ArticleResult, CheckFlag, Document

PinyinOf = Callable[[str], str]


def article_fields(data: dict[str, Any] | ArticleResult) -> dict[str, Any]:
    """The English fields a reader sees, from a reply or a result."""
    if isinstance(data, ArticleResult):
        return {"title": data.title, "summary": data.summary, "key_points": list(data.key_points)}
    return {"title": data["title"], "summary": data["summary"], "key_points": list(data["key_points"])}


def check_result_fields(
    doc: Document, fields: dict[str, Any], glossary: Sequence[Any], pinyin_of: PinyinOf | None = None
) -> list[CheckFlag]:
    simplified = doc.simplified if len(doc.simplified) == len(doc.text) else None
    return check_article(doc.text, fields, glossary, source_simplified=simplified, pinyin_of=pinyin_of)


def check_offline(doc: Document, result: ArticleResult) -> tuple[CheckFlag, ...]:
    """Offline output is in the source language by design: its figures are checked, not its language."""
    fields = {"title": result.title, "summary": result.summary}
    flags = check_result_fields(doc, fields, result.glossary)
    return tuple(f for f in flags if f.kind == "number")


def review_run_names(
    before: Sequence[ArticleResult],
    after: Sequence[ArticleResult],
    glossary: Sequence[Any],
    pinyin_of: PinyinOf | None = None,
) -> list[ArticleResult]:
    """One rendering per entity across the run's prose: flag articles that use another (after harmonising)."""
    prose = [ArticleProse(r.id, article_fields(r), r.glossary) for r in before]
    found = check_run_names(prose, glossary, pinyin_of=pinyin_of)
    reviewed = []
    for result in after:
        extra = [f for f in found.get(result.id, []) if f not in result.checks]
        reviewed.append(replace(result, checks=(*result.checks, *extra)) if extra else result)
    return reviewed


def check_briefing_overview(overview: str, results: Sequence[ArticleResult]) -> tuple[CheckFlag, ...]:
    """The overview may say only what the articles' English summaries say."""
    sources = [" ".join([r.title, r.summary, *r.key_points]) for r in results]
    return tuple(check_overview(overview, sources))


def check_totals(results: Sequence[ArticleResult], overview_checks: Sequence[CheckFlag] = ()) -> dict[str, int]:
    """run.json's checks: flags by kind, and how many articles carry any."""
    kinds = Counter(flag.kind for r in results for flag in r.checks)
    kinds.update(flag.kind for flag in overview_checks)
    return {
        "articles_unverified": sum(1 for r in results if r.checks),
        "number": kinds["number"],
        "untranslated": kinds["untranslated"],
        "name": kinds["name"],
        "overview": len(overview_checks),
    }
