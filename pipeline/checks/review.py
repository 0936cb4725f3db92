"""Checks applied to result records: one article, the run's names, the briefing's overview."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from pipeline.checks.guard import ArticleProse, RunNames, check_article, check_overview
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
    review = RunNameReview(glossary, pinyin_of)
    for result in before:
        review.add(result)
    by_id = {r.id: r for r in before}
    return [review.review(by_id[r.id], r) if r.id in by_id else r for r in after]


class RunNameReview:
    """review_run_names in two passes over a run too large to hold: `add` each result, then `review` each."""

    def __init__(self, glossary: Sequence[Any], pinyin_of: PinyinOf | None = None) -> None:
        self._names = RunNames(glossary, pinyin_of=pinyin_of)

    def add(self, before: ArticleResult) -> None:
        self._names.add(_prose(before))

    def review(self, before: ArticleResult, after: ArticleResult) -> ArticleResult:
        """`after` (the harmonised result) with the flags its original prose earns."""
        extra = [f for f in self._names.check(_prose(before)) if f not in after.checks]
        return replace(after, checks=(*after.checks, *extra)) if extra else after


def _prose(result: ArticleResult) -> ArticleProse:
    return ArticleProse(result.id, article_fields(result), result.glossary)


def check_briefing_overview(overview: str, results: Sequence[ArticleResult]) -> tuple[CheckFlag, ...]:
    """The overview may say only what the summaries of the articles it was written from say."""
    sources = [" ".join([r.title, r.summary, *r.key_points]) for r in results]
    return tuple(check_overview(overview, sources))


def check_totals(
    kinds: Counter[str], flagged_articles: int, overview_checks: Sequence[CheckFlag] = ()
) -> dict[str, int]:
    """run.json's checks: flags by kind (articles' and the overview's), and how many articles carry any."""
    kinds = kinds + Counter(flag.kind for flag in overview_checks)
    return {
        "articles_unverified": flagged_articles,
        "number": kinds["number"],
        "untranslated": kinds["untranslated"],
        "name": kinds["name"],
        "overview": len(overview_checks),
    }
