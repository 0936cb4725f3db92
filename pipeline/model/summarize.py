"""Summarise one document with a model: map (one call per chunk) → reduce (merge, staged if large)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import OutputTruncated
from pipeline.glossary import Lexicon, Simplify, enrich_with_dictionary, merge_entries, verify_terms
from pipeline.ingest.chunk import split_text
from pipeline.ingest.tokens import TokenCounter
from pipeline.model.prompts import Prompt, delimit, load_prompt
from pipeline.output.render import BriefingGroup
from pipeline.records import ArticleResult, Document, Usage

if TYPE_CHECKING:
    from pipeline.model.client import CallResult, ModelClient

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# Past this share of CJK characters, a reply is still source text rather than English.
_UNTRANSLATED_SHARE = 0.2
# Below this many tokens a chunk that overflows the output budget is not worth splitting again.
_MIN_SPLIT_TOKENS = 60


@dataclass(frozen=True)
class SummaryOptions:
    """Knobs of the model path, taken from Settings at the edge."""

    max_chunk_tokens: int
    max_output_tokens: int
    temperature: float
    mojibake_marker: str


def cjk_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(1 for c in letters if _CJK.match(c)) / len(letters) if letters else 0.0


def english_check(data: dict[str, Any]) -> str | None:
    """Reject replies that are still in the source language (a failure mode of small models)."""
    prose = " ".join([data.get("title", ""), data.get("summary", ""), *data.get("key_points", [])])
    if cjk_share(prose) > _UNTRANSLATED_SHARE:
        return "title, summary and key_points must be written in English, not copied from the article"
    for item in data.get("glossary", []):
        if cjk_share(item.get("target", "")) > _UNTRANSLATED_SHARE:
            return f"glossary target for {item.get('source')!r} must be English"
    return None


class ModelSummarizer:
    """Turn a Document into an ArticleResult with map and reduce requests."""

    mode = "model"

    def __init__(
        self,
        client: ModelClient,
        model: str,
        options: SummaryOptions,
        count_tokens: TokenCounter,
        simplify: Simplify,
        lexicon: Callable[[], Lexicon] | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.options = options
        self.count_tokens = count_tokens
        self.simplify = simplify
        self._load_lexicon = lexicon  # loaded on first use: cached runs never need it
        self.map_prompt = load_prompt("map")
        self.reduce_prompt = load_prompt("reduce")

    @functools.cached_property
    def _fingerprint(self) -> str:
        """Everything besides an article's bytes that decides its result (for the results cache)."""
        from dataclasses import asdict

        from pipeline.cache import cache_key, source_fingerprint

        return cache_key(
            {
                "model": self.model,
                "prompts": [self.map_prompt.hash, self.reduce_prompt.hash],
                "options": asdict(self.options),
                "code": source_fingerprint(),
            }
        )

    def fingerprint(self) -> str:
        return self._fingerprint

    async def summarize(self, doc: Document) -> ArticleResult:
        usage = Usage()
        pieces = split_text(doc.text, self.options.max_chunk_tokens, self.count_tokens)
        partials: list[dict[str, Any]] = []
        for index, piece in enumerate(pieces):
            partials += await self._map(doc, piece, index, len(pieces), usage)
        merged = partials[0] if len(partials) == 1 else await self._reduce(doc, partials, usage)
        candidates = [item for p in partials for item in p.get("glossary", [])]
        verified, dropped = verify_terms(candidates, doc, self.simplify)
        glossary, conflicts = merge_entries(verified)
        if self._load_lexicon is not None and doc.language == "zh" and glossary:
            enrich_with_dictionary(glossary, self._load_lexicon())
        flags = list(doc.flags)
        if dropped:
            flags.append(f"glossary_dropped:{dropped}")
        flags += [f"glossary_conflict:{c.source_simplified}" for c in conflicts]
        return ArticleResult(
            id=doc.id,
            source=doc.source,
            mode="model",
            language=doc.language,
            script=doc.script,
            title=merged["title"],
            summary=merged["summary"],
            key_points=list(merged["key_points"]),
            glossary=glossary,
            flags=flags,
            model=self.model,
            prompt=self.map_prompt.record(),
            usage=usage,
            dropped_terms=dropped,
        )

    async def briefing(self, results: Sequence[ArticleResult], usage: Usage) -> tuple[str, list[BriefingGroup]]:
        from pipeline.model.briefing import model_briefing

        return await model_briefing(
            self.client, results, self.count_tokens, self.options.max_output_tokens, self.options.temperature, usage
        )

    async def _map(self, doc: Document, text: str, index: int, parts: int, usage: Usage) -> list[dict[str, Any]]:
        """Summarise one chunk; when the reply overflows its budget, split the chunk and go on."""
        user = {
            "document_id": doc.id,
            "part": str(index + 1),
            "parts": str(parts),
            "language": doc.language,
            "text": delimit(text, "article"),
        }
        try:
            result = await self._call(self.map_prompt, user, usage, check=english_check)
        except OutputTruncated:
            tokens = self.count_tokens(text)
            if tokens < _MIN_SPLIT_TOKENS:
                raise
            halves = split_text(text, max(tokens // 2, _MIN_SPLIT_TOKENS // 2), self.count_tokens)
            out: list[dict[str, Any]] = []
            for half in halves:
                out += await self._map(doc, half, index, parts, usage)
            return out
        return [result]

    async def _reduce(self, doc: Document, partials: list[dict[str, Any]], usage: Usage) -> dict[str, Any]:
        """Merge chunk results, in stages when one merge request would exceed the token budget."""
        level = [_digest(p) for p in partials]
        while len(level) > 1:
            batches = batch_by_tokens(level, self.options.max_chunk_tokens, self._json_tokens)
            level = [await self._reduce_once(doc, batch, usage) if len(batch) > 1 else batch[0] for batch in batches]
        return level[0]

    async def _reduce_once(self, doc: Document, batch: list[dict[str, Any]], usage: Usage) -> dict[str, Any]:
        user = {
            "document_id": doc.id,
            "language": doc.language,
            "parts": str(len(batch)),
            "parts_json": delimit(json.dumps(batch, ensure_ascii=False, indent=1), "parts"),
        }
        return await self._call(self.reduce_prompt, user, usage, check=english_check)

    def _json_tokens(self, item: dict[str, Any]) -> int:
        return self.count_tokens(json.dumps(item, ensure_ascii=False))

    async def _call(
        self,
        prompt: Prompt,
        user: dict[str, str],
        usage: Usage,
        check: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> dict[str, Any]:
        from pipeline.model.client import JsonRequest

        request = JsonRequest(
            prompt_id=prompt.id,
            prompt_hash=prompt.hash,
            messages=prompt.messages({"mojibake_marker": self.options.mojibake_marker}, user),
            schema_name=prompt.name,
            schema=prompt.schema,
            max_tokens=self.options.max_output_tokens,
            temperature=self.options.temperature,
            check=check,
        )
        result = await self.client.complete_json(request)
        add_call_usage(usage, result)
        return result.data


def add_call_usage(usage: Usage, result: CallResult) -> None:
    """Count a call: cache hits cost no request and no tokens in this run."""
    if result.cached:
        usage.cache_hits += 1
        return
    usage.requests += result.attempts
    usage.prompt_tokens += result.prompt_tokens
    usage.completion_tokens += result.completion_tokens


def _digest(partial: dict[str, Any]) -> dict[str, Any]:
    """What the reduce step needs of a chunk result; glossaries merge in code, not in the model."""
    return {k: partial[k] for k in ("title", "summary", "key_points")}


def batch_by_tokens(
    items: Sequence[dict[str, Any]], budget: int, count: Callable[[dict[str, Any]], int]
) -> list[list[dict[str, Any]]]:
    """Group items in order into batches under `budget` tokens; always at least pairs, so stages shrink."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    used = 0
    for item in items:
        size = count(item)
        if current and used + size > budget and len(current) >= 2:
            batches.append(current)
            current, used = [], 0
        current.append(item)
        used += size
    if current:
        batches.append(current)
    return batches
