"""The composition root: Settings -> sources, backend (or offline), cache, summarizer, sinks -> a run.

What the CLI commands do, as library calls: the CLI only parses options and maps errors to exit codes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import sys
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from pipeline.config import Settings
from pipeline.errors import ConfigError, InputError, InterruptedEarly
from pipeline.records import Document, DocumentMeta, RawInput, RunReport
from pipeline.secrets import public_url

if TYPE_CHECKING:
    from pipeline.cache import Cache
    from pipeline.model.client import ModelClient
    from pipeline.output.folder import OutputFolder
    from pipeline.runner import ProgressHook, Runner, Summarizer
    from pipeline.sources import WebOptions
    from pipeline.sources.seen import SeenStore

log = logging.getLogger(__name__)
Notify = Callable[[str], None]


# -- ingest -------------------------------------------------------------------------------------


def ingest_input(raw: RawInput, doc_id: str) -> list[Document]:
    """One input's documents (one per story), carrying the source's metadata.

    HTML (saved pages and fetched ones) goes through the main-content extractor first; the
    extracted text then meets the same cleaner as any article (pinyin, mojibake, story split).
    """
    from pipeline.ingest.documents import ingest

    if raw.error is not None:
        raise raw.error
    if raw.payload is None:
        raise InputError(raw.source, "no content")
    meta = raw.meta
    if raw.media_type == "text/html":
        from pipeline.ingest.html import extract_page

        page = extract_page(raw.payload, charset=raw.charset, url=raw.meta.url, source=raw.source)
        meta = _fill(raw.meta, page.meta)
        documents = ingest(page.text.encode("utf-8"), raw.source, doc_id)
        # The page's own encoding, not that of the extracted text handed to the cleaner.
        extra = (f"encoding:{page.encoding}", "html", f"extractor:{page.method}")
        documents = [replace(d, flags=(*extra, *d.flags[1:])) for d in documents]
    else:
        documents = ingest(raw.payload, raw.source, doc_id)
    if meta.is_empty():
        return documents
    return [replace(doc, meta=meta) for doc in documents]


def _fill(given: DocumentMeta, found: DocumentMeta) -> DocumentMeta:
    """What the source already said (a feed item, a fetch), its gaps filled from the page itself."""
    return replace(given, **{k: v for k, v in vars(found).items() if v and not getattr(given, k)})


@dataclass(frozen=True)
class CleanedInput:
    """One input's documents, or the reason it could not be read."""

    source: str
    documents: list[Document]
    error: InputError | None = None


def clean_inputs(paths: Sequence[str], stdin: BinaryIO) -> Iterator[CleanedInput]:
    """Read and clean every input; a bad one is reported, the others still processed."""
    from pipeline.sources.files import file_inputs

    ids = IdAllocator()
    for raw in file_inputs(paths, stdin):
        try:
            yield CleanedInput(raw.source, ingest_input(raw, ids.claim(raw.id_hint)))
        except InputError as exc:
            yield CleanedInput(raw.source, [], exc)


def chunk_documents(documents: Sequence[Document], max_tokens: int) -> list[dict[str, object]]:
    """Chunk cleaned documents with the shipped tokenizer."""
    from pipeline.ingest.chunk import chunk_document
    from pipeline.ingest.tokens import default_counter

    count = default_counter()
    return [chunk.to_json() for doc in documents for chunk in chunk_document(doc, max_tokens, count)]


class IdAllocator:
    """Hand out output ids: two inputs with the same name, or a name the folder cannot take, get `~2`, `~3`."""

    def __init__(self, is_free: Callable[[str], bool] = lambda doc_id: True) -> None:
        self.used: set[str] = set()
        self.is_free = is_free

    def claim(self, wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate in self.used or not self.is_free(candidate):
            n += 1
            candidate = f"{wanted}~{n}"
        self.used.add(candidate)
        return candidate


# -- choosing the model path --------------------------------------------------------------------


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


# -- the main job -------------------------------------------------------------------------------


def _warm_up(session: Session) -> Callable[[], None]:
    from pipeline.ingest.warmup import quietly, warm_up_ingest, warm_up_model_path

    load = warm_up_ingest if session.client is None else warm_up_model_path
    return functools.partial(quietly, load)


def own_output_check() -> Callable[[Path], bool]:
    """Whether a file is one brief wrote into an output folder (never an input); each folder's list read once.

    Read per file, a folder of 1,000 articles cost 1,000 reads of its list: a one-second stall.
    """
    from pipeline.output.folder import OWNED_LIST, owned_files

    lists: dict[Path, set[str]] = {}

    def is_own_output(path: Path) -> bool:
        parent = path.parent
        if parent not in lists:
            lists[parent] = owned_files(parent) if (parent / OWNED_LIST).exists() else set()
        return path.name in lists[parent]

    return is_own_output


def _input_paths(paths: Sequence[str]) -> list[Path]:
    """Every input file named or inside a named folder (to keep outputs off them)."""
    from pipeline.sources.files import folder_articles

    found: list[Path] = []
    is_own_output = own_output_check()
    for name in paths:
        path = Path(name)
        if name == "-":
            continue
        if path.is_dir():
            found += [p for p in folder_articles(path) if isinstance(p, Path) and not is_own_output(p)]
        else:
            found.append(path)
    return found


def prepare_output(out_dir: Path, paths: Sequence[str]) -> OutputFolder:
    from pipeline.output.folder import OutputFolder

    folder = OutputFolder(out_dir, _input_paths(paths))
    folder.check()
    return folder


@dataclass
class PreparedRun:
    """A run put together from Settings, ready to go: its session, its runner and its inputs."""

    session: Session
    runner: Runner
    inputs: Iterable[RawInput] | AsyncIterable[RawInput]
    seen: SeenStore | None = None

    async def run(self) -> RunReport:
        try:
            return await self.runner.run(self.inputs)
        finally:
            await self.session.close()
            if self.seen is not None:
                self.seen.close()


async def prepare_run(
    settings: Settings,
    paths: Sequence[str],
    stdin: BinaryIO,
    out_dir: Path | None,
    notify: Notify,
    progress: ProgressHook | None = None,
    stdout: TextIO | None = None,
    stdout_format: str = "md",
    defer: bool = False,
    web: WebOptions | None = None,
    probe: bool = True,
) -> PreparedRun:
    """Build the run: output folder checked, endpoint chosen, sinks and sources wired.

    `defer` is for Batch jobs: cache misses are recorded on `session.client.deferred` instead of
    sent, and nothing is written (no sinks).
    """
    from pipeline.output.sinks import FolderSink, ManifestSink, StdoutSink
    from pipeline.runner import Runner, Sink
    from pipeline.sources import WebOptions, open_inputs
    from pipeline.sources.dedup import Dedup

    web = web or WebOptions()
    if web.new_only and settings.cache_dir is None:
        raise ConfigError("--new remembers what was summarised in the cache folder: it cannot be used with --no-cache")
    # Listing the input folders and reading the output folder's lists is file I/O: not on the loop.
    folder = await asyncio.to_thread(prepare_output, out_dir, paths) if out_dir is not None and not defer else None
    session = await open_session(settings, probe=probe)
    for notice in session.notices:
        notify(notice)
    if defer:
        if session.client is None:
            await session.close()
            raise ConfigError("a batch job needs a model endpoint (OPENAI_BASE_URL / --base-url and a model)")
        session.client.deferred = {}
    sinks: list[Sink] = []
    if folder is not None:
        sinks += [FolderSink(folder), ManifestSink(folder)]
    if stdout is not None:
        sinks.append(StdoutSink(stdout, stdout_format))

    seen = None
    if settings.cache_dir is not None:
        from pipeline.sources.seen import SeenStore

        seen = await asyncio.to_thread(SeenStore.in_cache, settings.cache_dir)  # opens a database: not on the loop
    dedup = Dedup(ingest_input, seen, web.new_only)
    if not defer:
        sinks.append(dedup)
    ids = IdAllocator(folder.id_is_free if folder is not None else lambda doc_id: True)
    runner = Runner(
        summarizer=session.summarizer,
        ingest=dedup.ingest,
        sinks=sinks,
        claim_id=ids.claim,
        endpoint=public_url(session.settings.base_url),
        max_parallel_inputs=max(4, session.settings.concurrency * 2),
        progress=progress,
        on_error=None if defer else notify,
        client_stats=session.client_stats,
        results_cache=session.cache,
        strict=settings.strict,
        warm_up=_warm_up(session),
    )
    inputs = open_inputs(paths, stdin, own_output_check(), web, settings.cache_dir, seen)
    return PreparedRun(session, runner, inputs, seen)


async def summarize_inputs(
    settings: Settings,
    paths: Sequence[str],
    stdin: BinaryIO,
    out_dir: Path | None,
    notify: Notify,
    progress: ProgressHook | None = None,
    stdout: TextIO | None = None,
    stdout_format: str = "md",
    web: WebOptions | None = None,
) -> RunReport:
    """The main job: read inputs, summarise with the model (or offline), hand results to the sinks."""
    try:
        prepared = await prepare_run(settings, paths, stdin, out_dir, notify, progress, stdout, stdout_format, web=web)
    except asyncio.CancelledError:
        # Not "run.json is written": the runner never started (a probe of a busy local server can take minutes).
        raise InterruptedEarly("interrupted while starting, before any article: nothing written") from None
    return await prepared.run()


def run_main(coro: Any) -> Any:
    """Run the main coroutine; SIGTERM stops it the way Ctrl-C does (outputs written, run.json interrupted)."""
    import pipeline.output.sinks  # noqa: F401  imported here, not on the loop, where an import is a stall (ingest: by the warm-up)
    import pipeline.runner  # noqa: F401
    import pipeline.sources.dedup  # noqa: F401
    from pipeline.cache import source_fingerprint

    source_fingerprint()  # reads brief's own files once (cached): not on the loop either

    async def main() -> Any:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None and sys.platform != "win32":
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await coro
        finally:
            if sys.platform != "win32":
                loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(main())
