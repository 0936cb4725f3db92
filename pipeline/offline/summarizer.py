"""The no-model path as a Summarizer: keyword triage and extractive summaries, labelled offline."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection
from dataclasses import replace

from pipeline.dictionary import Dictionary
from pipeline.grouping import group_by_shared_terms
from pipeline.languages import profile
from pipeline.records import ArticleResult, Briefing, Document
from pipeline.responsive import load_in_thread


def offline_overview(results: Collection[ArticleResult]) -> str:
    """Say what an offline run found, from the glossaries alone."""
    counts = Counter(f"{e.source} ({e.target})" if e.target else e.source for r in results for e in r.glossary[:10])
    top = ", ".join(term for term, _ in counts.most_common(12))
    return (
        f"Offline keyword triage of {len(results)} article(s); no model summarised them. "
        f"Most frequent key terms: {top or 'none found'}."
    )


def _triage(doc: Document, dictionary: Dictionary | None) -> ArticleResult:
    from pipeline.checks.review import check_offline
    from pipeline.offline.triage import summarize_offline

    result = replace(summarize_offline(doc, dictionary), meta=doc.meta)
    checks = check_offline(doc, result)
    return replace(result, checks=checks) if checks else result


class OfflineSummarizer:
    """Triage without a model; nothing is cached (it is fast) and nothing is invented."""

    mode = "offline"
    model = None

    def __init__(self) -> None:
        self._dictionary: Dictionary | None = None
        self._lock = asyncio.Lock()

    def fingerprint(self) -> None:
        return None

    async def _dictionary_off_loop(self) -> Dictionary:
        """Loaded once, in a thread: parsing CC-CEDICT takes about a second."""
        async with self._lock:
            if self._dictionary is None:
                self._dictionary = await load_in_thread(self.dictionary)
        return self._dictionary

    def dictionary(self) -> Dictionary:
        if self._dictionary is None:
            from pipeline.dictionary import load_dictionary

            self._dictionary = load_dictionary()
        return self._dictionary

    async def summarize(self, doc: Document) -> ArticleResult:
        dictionary = await self._dictionary_off_loop() if profile(doc.language).dictionary else None
        return _triage(doc, dictionary)

    async def briefing(self, results: Collection[ArticleResult]) -> Briefing:
        # In a thread: on a large run these passes over the (spilled) results take a while.
        overview = await asyncio.to_thread(offline_overview, results)
        return Briefing(overview, await asyncio.to_thread(group_by_shared_terms, results))
