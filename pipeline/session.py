"""Choose the path for a run (configured endpoint, discovered local server, or offline) and build it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.output.render import BriefingGroup
from pipeline.records import ArticleResult, Document, Usage

if TYPE_CHECKING:
    from pipeline.cache import Cache
    from pipeline.model.client import ModelClient
    from pipeline.runner import Summarizer


@dataclass
class Session:
    """The parts of one run, and what the user should be told about how they were chosen."""

    settings: Settings
    summarizer: Summarizer
    client: ModelClient | None = None
    notices: list[str] = field(default_factory=list)
    cache: Cache | None = None  # also holds whole-article results, keyed by input bytes

    def client_stats(self) -> dict[str, Any]:
        return self.client.stats.to_json() if self.client else {}

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


class OfflineSummarizer:
    """The no-model path: keyword triage and extractive summaries, labelled offline."""

    mode = "offline"
    model = None

    def fingerprint(self) -> None:
        return None  # offline triage is fast: nothing to cache

    def __init__(self) -> None:
        from pipeline.dictionary import load_dictionary

        self.dictionary = load_dictionary()

    async def summarize(self, doc: Document) -> ArticleResult:
        from pipeline.offline.triage import summarize_offline

        return summarize_offline(doc, self.dictionary)

    async def briefing(self, results: Sequence[ArticleResult], usage: Usage) -> tuple[str, list[BriefingGroup]]:
        from pipeline.model.briefing import group_by_shared_terms, offline_overview

        return offline_overview(results), group_by_shared_terms(results)


def resolve_endpoint(settings: Settings, notices: list[str]) -> Settings | None:
    """Return settings with an endpoint to use, or None for offline mode."""
    if settings.offline:
        notices.append("OFFLINE mode (--offline): keyword triage only, no model is called.")
        return None
    if settings.base_url:
        return settings
    from pipeline.model.discovery import choose_model, discover

    found = discover()
    if found is None:
        notices.append(
            "No model endpoint configured (OPENAI_BASE_URL / --base-url) and no local server found "
            "on ports 8000, 8080, 11434, 1234: running in OFFLINE mode (keyword triage, no translation)."
        )
        return None
    model = choose_model(found, settings.model)
    notices.append(f"Using {found.name} at {found.base_url}, model {model} (discovered).")
    return settings.with_endpoint(found.base_url, model, "discovered")


async def open_session(settings: Settings) -> Session:
    """Build the summarizer for these settings: model path when an endpoint is known, else offline."""
    notices: list[str] = []
    resolved = resolve_endpoint(settings, notices)
    if resolved is None:
        return Session(settings, OfflineSummarizer(), None, notices)
    from pipeline.cache import Cache
    from pipeline.dictionary import load_dictionary
    from pipeline.ingest.language import to_simplified
    from pipeline.ingest.mojibake import MOJIBAKE_MARKER
    from pipeline.ingest.tokens import default_counter
    from pipeline.model.client import ModelClient
    from pipeline.model.summarize import ModelSummarizer, SummaryOptions

    cache = Cache(resolved.cache_dir) if resolved.cache_dir else None
    client = ModelClient(resolved, cache)
    model = resolved.model or await _first_model(client, resolved)
    if model != resolved.model:
        resolved = resolved.with_endpoint(resolved.base_url or "", model, resolved.base_url_origin)
        client.model = model
    options = SummaryOptions(
        max_chunk_tokens=resolved.max_chunk_tokens,
        max_output_tokens=resolved.max_output_tokens,
        temperature=resolved.temperature,
        mojibake_marker=MOJIBAKE_MARKER,
    )
    summarizer = ModelSummarizer(client, model, options, default_counter(), to_simplified, load_dictionary)
    return Session(resolved, summarizer, client, notices, cache)


async def _first_model(client: ModelClient, settings: Settings) -> str:
    models = await client.list_models()
    if not models:
        raise ConfigError(f"{settings.base_url} lists no models: set BRIEF_MODEL or --model")
    return models[0]
