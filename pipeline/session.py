"""One run's model session: the endpoint chosen (or offline), the cache, the client and its model.

Opening it never blocks the event loop: the cache's first open, the model path's imports and the
offline summarizer's are done in worker threads; the JSON-mode probe is remembered in the cache.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.secrets import public_url

if TYPE_CHECKING:
    from pipeline.cache import Cache
    from pipeline.model.client import ModelClient
    from pipeline.runner import Summarizer

log = logging.getLogger(__name__)


@dataclass
class Session:
    """The parts of one run, and what the user should be told about how they were chosen."""

    settings: Settings
    summarizer: Summarizer
    client: ModelClient | None = None
    notices: list[str] = field(default_factory=list)
    cache: Cache | None = None  # also holds whole-article results, keyed by input bytes

    def client_stats(self) -> dict[str, Any]:
        if self.client is None:
            return {}
        stats = self.client.stats.to_json()
        if self.cache is not None:  # every damaged entry this run met, the results cache's included
            stats["corrupt_cache_entries"] = self.cache.corrupt_reads
        return stats

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def resolve_endpoint(settings: Settings, notices: list[str]) -> Settings | None:
    """Return settings with an endpoint to use, or None for offline mode."""
    if settings.offline:
        notices.append("OFFLINE mode (--offline): keyword triage only, no model is called.")
        return None
    if settings.base_url:
        if settings.base_url_origin == "openai-default":
            notices.append(
                f"OPENAI_API_KEY is set and no endpoint is: using OpenAI's API ({settings.base_url}), "
                f"model {settings.model}. Set OPENAI_BASE_URL for another endpoint."
            )
        return settings
    from pipeline.model.discovery import discover

    found = discover(wait=settings.discovery_wait, notify=log.warning)  # said at once: waiting can take minutes
    if found is None:
        notices.append(
            "No model endpoint configured (OPENAI_BASE_URL / --base-url) and no local server found "
            "on ports 8000, 8080, 11434, 1234: running in OFFLINE mode (keyword triage, no translation)."
        )
        return None
    model = settings.model or found.models[0]
    notices.append(f"Using {found.name} at {found.base_url}, model {model} (discovered; no API key is sent to it).")
    return settings.with_endpoint(found.base_url, model, "discovered")


async def open_session(settings: Settings, probe: bool = True) -> Session:
    """Build the summarizer for these settings: model path when an endpoint is known, else offline.

    `probe` asks the endpoint for its models and whether it applies json_schema; a Batch job
    whose results come from elsewhere (vllm run-batch) names its model and needs no server.
    Imports and the cache's first open run in a worker thread, never on the loop.
    """
    notices: list[str] = []
    # Discovery (no endpoint set) blocks, but before any other task exists, and Ctrl-C must stop it at once.
    resolved = resolve_endpoint(settings, notices)
    if resolved is not None:
        return await _model_session(resolved, probe, notices)
    return Session(settings, await asyncio.to_thread(_offline_summarizer), None, notices)


def _offline_summarizer() -> Summarizer:
    from pipeline.offline.summarizer import OfflineSummarizer

    return OfflineSummarizer()


def _open_cache(settings: Settings) -> Cache | None:
    """The cache, opened and checked writable before the first paid-for request (not after it).

    Run in a thread, which also imports the model path's modules: an import on the loop is a stall.
    """
    import pipeline.dictionary
    import pipeline.ingest.mojibake
    import pipeline.model.backends.openai_http
    import pipeline.model.client
    import pipeline.model.endpoint
    import pipeline.model.summarize  # noqa: F401
    from pipeline.cache import Cache

    cache = Cache(settings.cache_dir) if settings.cache_dir else None
    if cache is not None:
        cache.check_writable()
    return cache


async def _model_session(resolved: Settings, probe: bool, notices: list[str]) -> Session:
    cache = await asyncio.to_thread(_open_cache, resolved)
    from pipeline.dictionary import load_dictionary
    from pipeline.ingest.language import to_simplified
    from pipeline.ingest.mojibake import MOJIBAKE_MARKER
    from pipeline.ingest.tokens import default_counter
    from pipeline.model.client import ModelClient
    from pipeline.model.summarize import ModelSummarizer, SummaryOptions

    client = ModelClient.for_settings(resolved, cache)
    try:
        model = resolved.model if not probe and resolved.model else await choose_model(client, resolved)
        client.model = model
        resolved = resolved.with_endpoint(resolved.base_url or "", model, resolved.base_url_origin)
        if probe and resolved.json_mode == "auto":
            notice = await check_schema_enforcement(client, cache)
            if notice:
                notices.append(notice)
    except BaseException:
        await client.aclose()
        raise
    options = SummaryOptions(
        max_chunk_tokens=resolved.max_chunk_tokens,
        max_output_tokens=resolved.max_output_tokens,
        temperature=resolved.temperature,
        mojibake_marker=MOJIBAKE_MARKER,
    )
    summarizer = ModelSummarizer(client, options, default_counter(), to_simplified, load_dictionary)
    return Session(resolved, summarizer, client, notices, cache)


async def check_schema_enforcement(client: ModelClient, cache: Cache | None) -> str | None:
    """Probe once per endpoint and model (remembered in the cache) whether json_schema is really applied."""
    from pipeline.cache import cache_key

    key = cache_key({"probe": "json_schema", "endpoint": client.base_url, "model": client.model})
    known = cache.get(key) if cache is not None else None
    if known is not None and isinstance(known.get("enforced"), bool):
        enforced = bool(known["enforced"])
        if not enforced:
            client.step_down("schema", "remembered from an earlier probe")
    else:
        enforced = await client.probe_schema()
        if cache is not None:
            cache.put(key, {"enforced": enforced, "json_mode": client.json_mode})
    if enforced:
        return None
    return (
        f"{client.base_url} does not apply response_format json_schema: using json mode {client.json_mode}, "
        "with the schema described in the prompt"
    )


async def choose_model(client: ModelClient, settings: Settings) -> str:
    """The model asked for (--model / BRIEF_MODEL), else the server's first.

    With a model named nothing is asked: a fully cached re-run then never touches the network (nor
    loads the HTTP stack), and an endpoint that is down stops the run at its first request.
    """
    if settings.model:
        return settings.model
    from pipeline.errors import EndpointRejected, EndpointUnavailable
    from pipeline.model.backends import Transient

    try:
        models = await client.list_models()
    except Transient as exc:
        raise EndpointUnavailable(f"{client.base_url} is not ready: {exc}") from None
    except EndpointRejected as exc:
        # Some hosted APIs do not list models; with a model named, the first request will tell.
        if settings.model and exc.status in (404, 405):
            return settings.model
        raise
    if settings.model:
        return settings.model
    if not models:
        raise ConfigError(f"{public_url(settings.base_url)} lists no models: set BRIEF_MODEL or --model")
    return models[0]
