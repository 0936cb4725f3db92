"""The composition root: Settings -> sources, backend (or offline), cache, summarizer, sinks -> a run.

What the CLI commands do, as library calls: the CLI only parses options and maps errors to exit codes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sys
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from pipeline.config import Settings
from pipeline.digestset import DigestSet
from pipeline.errors import ConfigError, InputError, InterruptedEarly
from pipeline.records import Document, DocumentMeta, RawInput
from pipeline.run_report import RunReport
from pipeline.secrets import public_url
from pipeline.session import Session, open_session

if TYPE_CHECKING:
    from pipeline.output.folder import OutputFolder
    from pipeline.runner import ProgressHook, Runner
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
        # By digest: a run of 100,000 inputs holds ~1 MB of ids, not ~15. A (rare: 3 in 10^10) false
        # "used" only gives an input a `~2` id, never lets two share one.
        self.used = DigestSet()
        self.is_free = is_free

    def claim(self, wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate in self.used or not self.is_free(candidate):
            n += 1
            candidate = f"{wanted}~{n}"
        self.used.add(candidate)
        return candidate


# -- the main job -------------------------------------------------------------------------------


def _warm_up(session: Session) -> Callable[[], None]:
    from pipeline.ingest.warmup import quietly, warm_up_ingest, warm_up_model_path

    load = warm_up_ingest if session.client is None else warm_up_model_path
    return functools.partial(quietly, load)


def own_output_check() -> Callable[[str], bool]:
    """Whether a file is one brief wrote into an output folder (never an input); each folder's list read once.

    Read per file, a folder of 1,000 articles cost 1,000 reads of its list: a one-second stall.
    Paths as strings: a Path made per file of a 640-file folder was a 26 ms stall of its own.
    """
    from pipeline.output.folder import OWNED_LIST, owned_files

    lists: dict[str, set[str]] = {}

    def is_own_output(path: str) -> bool:
        parent, name = os.path.split(path)
        if parent not in lists:
            folder = Path(parent or ".")
            lists[parent] = owned_files(folder) if (folder / OWNED_LIST).exists() else set()
        return name in lists[parent]

    return is_own_output


def _input_paths(paths: Sequence[str]) -> Iterator[str]:
    """Every input file named or inside a named folder (to keep outputs off them), one at a time."""
    from pipeline.sources.files import folder_articles

    is_own_output = own_output_check()
    for name in paths:
        path = Path(name)
        if name == "-":
            continue
        if path.is_dir():
            yield from (p for p in folder_articles(path) if isinstance(p, str) and not is_own_output(p))
        else:
            yield name


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
            if self.seen is not None:  # closing folds its WAL into the database (an fsync): not on the loop
                await asyncio.to_thread(self.seen.close)


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
