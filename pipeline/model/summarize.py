"""Summarise one document with a model: map (one call per chunk, in parallel) → reduce (merge, staged if large)."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.checks.review import article_fields
from pipeline.errors import OutputTruncated, PromptTooLong
from pipeline.glossary import Lexicon, Simplify, enrich_with_dictionary, merge_entries, verify_terms
from pipeline.ingest.chunk import split_balanced, split_text
from pipeline.ingest.tokens import TokenCounter
from pipeline.languages import profile
from pipeline.model.briefing import model_briefing
from pipeline.model.client import JsonRequest, ModelClient
from pipeline.model.english import language_problem, repetition_problem, usable_term
from pipeline.model.prompts import Prompt, delimit, load_prompt
from pipeline.model.verify import verify_and_repair
from pipeline.records import ArticleResult, Briefing, Document, Usage
from pipeline.responsive import load_in_thread, off_loop_if

log = logging.getLogger(__name__)

_INLINE_CHUNKING_CHARS = 1000  # shorter texts are chunked on the loop (~2 ms at most; ~1.8 ms per 1,000 chars)

# Below this many tokens a chunk that overflows the output budget is not worth splitting again.
_MIN_SPLIT_TOKENS = 60
# Glossary items a model gets wrong (an unknown kind, a missing field) are dropped, not fatal.
_SALVAGEABLE = ("glossary",)


@dataclass(frozen=True)
class SummaryOptions:
    """Knobs of the model path, taken from Settings at the edge."""

    max_chunk_tokens: int
    max_output_tokens: int
    temperature: float
    mojibake_marker: str


@dataclass
class _Partial:
    """A chunk's reply and what it cost."""

    data: dict[str, Any]
    usage: Usage
    salvaged: int = 0


class ModelSummarizer:
    """Turn a Document into an ArticleResult with map and reduce requests."""

    mode = "model"

    def __init__(
        self,
        client: ModelClient,
        options: SummaryOptions,
        count_tokens: TokenCounter,
        simplify: Simplify,
        lexicon: Callable[[], Lexicon] | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.count_tokens = count_tokens
        self.simplify = simplify
        self._load_lexicon = lexicon  # loaded on first use: cached runs never need it
        self._lexicon_value: Lexicon | None = None
        self._lexicon_lock = asyncio.Lock()
        self._context_tokens: int | None = None  # the smallest chunk the server said does not fit its context
        self.map_prompt = load_prompt("map")
        self.reduce_prompt = load_prompt("reduce")
        self.briefing_prompt = load_prompt("briefing")
        self.repair_prompt = load_prompt("repair")

    @property
    def model(self) -> str:
        return self.client.model

    async def _lexicon(self) -> Lexicon | None:
        """CC-CEDICT, loaded once, in a thread: a second of parsing must not stall the other requests."""
        if self._load_lexicon is None:
            return None
        async with self._lexicon_lock:
            if self._lexicon_value is None:
                self._lexicon_value = await load_in_thread(self._load_lexicon)
        return self._lexicon_value

    @functools.cached_property
    def _fingerprint(self) -> str:
        """Everything besides an article's bytes that decides its result (for the results cache)."""
        from pipeline.cache import cache_key, source_fingerprint

        return cache_key(
            {
                "model": self.model,
                "prompts": [self.map_prompt.hash, self.reduce_prompt.hash, self.repair_prompt.hash],
                "options": asdict(self.options),
                "code": source_fingerprint(),
            }
        )

    def fingerprint(self) -> str:
        return self._fingerprint

    async def summarize(self, doc: Document) -> ArticleResult:
        # Token counting per sentence: CPU work, and tiktoken gives the GIL up on every call, so on the
        # loop, with ingest running in the offload thread, each call waited for it (50-90 ms per article).
        heavy = len(doc.text) > _INLINE_CHUNKING_CHARS
        pieces = await off_loop_if(heavy, split_balanced, doc.text, self.options.max_chunk_tokens, self.count_tokens)
        # Chunks go out together: the client's semaphore is the one bound on requests in flight.
        mapped = await asyncio.gather(
            *(self._map(doc, piece, i, len(pieces), tokens) for i, (piece, tokens) in enumerate(pieces))
        )
        partials = [p for group in mapped for p in group]
        usage = sum((p.usage for p in partials), Usage())
        prompts = [self.map_prompt.record()]
        if len(partials) == 1:
            merged = partials[0].data
        else:
            merged, reduce_usage = await self._reduce(doc, [p.data for p in partials])
            usage = usage + reduce_usage
            prompts.append(self.reduce_prompt.record())
        # Items whose English cannot stand are dropped like other invalid items, not the whole reply.
        all_items = [item for p in partials for item in p.data.get("glossary", [])]
        candidates = [item for item in all_items if usable_term(item)]
        kept_terms, dropped = verify_terms(candidates, doc, self.simplify)
        glossary, conflicts = merge_entries(kept_terms)
        lexicon = await self._lexicon() if profile(doc.language).dictionary else None
        if lexicon is not None and glossary:
            glossary = enrich_with_dictionary(glossary, lexicon)
        verified = await verify_and_repair(
            self.client,
            self.repair_prompt,
            doc,
            article_fields(merged),
            glossary,
            count_tokens=self.count_tokens,
            max_source_tokens=min(self.options.max_chunk_tokens, (self._context_tokens or 1 << 30) - 1),
            max_output_tokens=self.options.max_output_tokens,
            temperature=self.options.temperature,
            pinyin_of=lexicon.pinyin if lexicon is not None else None,
        )
        usage = usage + verified.usage
        if verified.usage.requests or verified.usage.cache_hits:
            prompts.append(self.repair_prompt.record())
        merged = verified.fields
        flags = list(doc.flags)
        if verified.repaired:
            flags.append("repaired")
        salvaged = sum(p.salvaged for p in partials) + len(all_items) - len(candidates)
        if salvaged:
            flags.append(f"glossary_invalid:{salvaged}")
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
            meta=doc.meta,
            prompts=tuple(prompts) if len(prompts) > 1 else (),
            checks=verified.checks,
        )

    async def briefing(self, results: Collection[ArticleResult]) -> Briefing:
        return await model_briefing(
            self.client,
            self.briefing_prompt,
            results,
            self.count_tokens,
            self.options.max_output_tokens,
            self.options.temperature,
        )

    async def _map(self, doc: Document, text: str, index: int, parts: int, tokens: int | None = None) -> list[_Partial]:
        """Summarise one chunk; when the reply overflows its budget, split the chunk and go on."""
        user = {
            "document_id": doc.id,
            "part": str(index + 1),
            "parts": str(parts),
            "language": doc.language,
            "text": delimit(text, "article"),
        }
        tokens = self.count_tokens(text) if tokens is None else tokens
        try:
            if self._context_tokens is not None and tokens >= self._context_tokens >= _MIN_SPLIT_TOKENS:
                raise PromptTooLong("known not to fit")  # learnt from an earlier chunk: no request wasted
            data, usage, salvaged = await self._call(self.map_prompt, user, salvageable=_SALVAGEABLE)
        except OutputTruncated as exc:
            if tokens < _MIN_SPLIT_TOKENS:
                raise
            if isinstance(exc, PromptTooLong) and (self._context_tokens is None or tokens < self._context_tokens):
                if self._context_tokens is None:
                    log.warning(
                        "%s: a %d-token chunk does not fit the model's context; splitting such chunks "
                        "(a lower --max-chunk-tokens saves these requests)",
                        doc.id,
                        tokens,
                    )
                self._context_tokens = tokens
            halves = split_text(text, max(tokens // 2, _MIN_SPLIT_TOKENS // 2), self.count_tokens)
            out: list[_Partial] = []
            for half in halves:
                out += await self._map(doc, half, index, parts)
            return out
        return [_Partial(data, usage, salvaged)]

    async def _reduce(self, doc: Document, partials: list[dict[str, Any]]) -> tuple[dict[str, Any], Usage]:
        """Merge chunk results, in stages when one merge request would exceed the token budget."""
        level = [_digest(p) for p in partials]
        usage = Usage()
        while len(level) > 1:
            batches = batch_by_tokens(level, self.options.max_chunk_tokens, self._json_tokens)
            merged = await asyncio.gather(*(self._reduce_once(doc, b) for b in batches if len(b) > 1))
            replies = iter(merged)
            level = []
            for batch in batches:
                if len(batch) > 1:
                    data, cost = next(replies)
                    usage = usage + cost
                    level.append(data)
                else:
                    level.append(batch[0])
        return level[0], usage

    async def _reduce_once(self, doc: Document, batch: list[dict[str, Any]]) -> tuple[dict[str, Any], Usage]:
        user = {
            "document_id": doc.id,
            "language": doc.language,
            "parts": str(len(batch)),
            "parts_json": delimit(json.dumps(batch, ensure_ascii=False, indent=1), "parts"),
        }
        data, usage, _ = await self._call(self.reduce_prompt, user)
        return data, usage

    def _json_tokens(self, item: dict[str, Any]) -> int:
        return self.count_tokens(json.dumps(item, ensure_ascii=False))

    async def _call(
        self, prompt: Prompt, user: dict[str, str], salvageable: tuple[str, ...] = ()
    ) -> tuple[dict[str, Any], Usage, int]:
        request = JsonRequest(
            prompt_id=prompt.id,
            prompt_hash=prompt.hash,
            messages=prompt.messages({"mojibake_marker": self.options.mojibake_marker}, user),
            schema_name=prompt.name,
            schema=prompt.schema,
            max_tokens=self.options.max_output_tokens,
            temperature=self.options.temperature,
            check=repetition_problem,
            soft_check=language_problem,
            salvageable=salvageable,
        )
        result = await self.client.complete_json(request)
        return result.data, result.usage, result.salvaged


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
