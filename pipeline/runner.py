"""Run a batch: inputs → documents → article results → outputs, with a manifest of what happened."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from pipeline.errors import BriefError, InputError
from pipeline.glossary import harmonise_run
from pipeline.output.render import (
    BriefingGroup,
    briefing_markdown,
    dump_json,
    render_article,
    write_article,
    write_atomic,
    write_glossary,
)
from pipeline.records import ArticleResult, Document, Usage

if TYPE_CHECKING:
    from pipeline.cache import Cache

ProgressHook = Callable[[int, int], None]


class Summarizer(Protocol):
    """Either path: the model (summarize.ModelSummarizer) or the offline triage."""

    @property
    def mode(self) -> str: ...

    @property
    def model(self) -> str | None: ...

    async def summarize(self, doc: Document) -> ArticleResult: ...

    async def briefing(self, results: Sequence[ArticleResult], usage: Usage) -> tuple[str, list[BriefingGroup]]: ...

    def fingerprint(self) -> str | None:
        """What decides a result besides the input bytes; None when results are not worth caching."""


@dataclass
class InputReport:
    """What happened to one input file (a row of run.json)."""

    source: str
    status: str = "pending"  # ok | failed | interrupted
    error: str | None = None
    documents: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "error": self.error,
            "documents": self.documents,
            "requests": self.usage.requests,
            "cache_hits": self.usage.cache_hits,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass
class RunReport:
    """The whole run: per-input rows, the results, and totals for run.json."""

    mode: str
    model: str | None
    endpoint: str | None
    inputs: list[InputReport] = field(default_factory=list)
    results: list[ArticleResult] = field(default_factory=list)
    briefing_usage: Usage = field(default_factory=Usage)
    briefing_error: str | None = None
    interrupted: bool = False
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    elapsed_s: float = 0.0
    glossary_conflicts: list[dict[str, Any]] = field(default_factory=list)
    client_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[InputReport]:
        return [i for i in self.inputs if i.status != "ok"]

    def totals(self) -> dict[str, Any]:
        usage = Usage()
        for item in self.inputs:
            usage.add(item.usage)
        usage.add(self.briefing_usage)
        return {
            "inputs": len(self.inputs),
            "ok": sum(1 for i in self.inputs if i.status == "ok"),
            "failed": sum(1 for i in self.inputs if i.status == "failed"),
            "documents": len(self.results),
            "requests": usage.requests,
            "cache_hits": usage.cache_hits,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "dropped_terms": sum(r.dropped_terms for r in self.results),
            "elapsed_s": round(self.elapsed_s, 3),
        }

    def to_manifest(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "model": self.model,
            "endpoint": self.endpoint,
            "started": self.started,
            "interrupted": self.interrupted,
            "inputs": [i.to_json() for i in self.inputs],
            "briefing_error": self.briefing_error,
            "glossary_conflicts": self.glossary_conflicts,
            "client": self.client_stats,
            "totals": self.totals(),
        }


def public_endpoint(base_url: str | None) -> str | None:
    """Drop any user:password@ from a URL before it is written anywhere."""
    if not base_url:
        return None
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class DocumentIds:
    """Hand out output ids; two inputs with the same file name must not overwrite each other."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def claim(self, wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate in self.used:
            n += 1
            candidate = f"{wanted}~{n}"
        self.used.add(candidate)
        return candidate


@dataclass
class BatchJob:
    """One `brief summarize` run over some inputs."""

    summarizer: Summarizer
    out_dir: Path | None  # None: write nothing (stdin mode without --out)
    endpoint: str | None = None
    max_parallel_inputs: int = 16
    progress: ProgressHook | None = None
    on_error: Callable[[str], None] | None = None
    client_stats: Callable[[], dict[str, Any]] | None = None
    results_cache: Cache | None = None  # whole-article results by input bytes: re-runs skip every stage

    async def run(self, inputs: Sequence[tuple[str, bytes | InputError]]) -> RunReport:
        """Process every input; on cancellation keep what finished and mark the run interrupted."""
        report = RunReport(self.summarizer.mode, self.summarizer.model, public_endpoint(self.endpoint))
        report.inputs = [InputReport(source) for source, _ in inputs]
        started = time.monotonic()
        ids = DocumentIds()
        gate = asyncio.Semaphore(self.max_parallel_inputs)
        done = 0

        async def one(index: int) -> None:
            nonlocal done
            async with gate:
                await self._process(inputs[index], report.inputs[index], report, ids)
            done += 1
            if self.progress:
                self.progress(done, len(inputs))

        try:
            await asyncio.gather(*(one(i) for i in range(len(inputs))))
            await self._finish(report)
        except asyncio.CancelledError:
            report.interrupted = True
            for item in report.inputs:
                if item.status == "pending":
                    item.status = "interrupted"
            raise
        finally:
            report.elapsed_s = time.monotonic() - started
            self._write_run_files(report)
        return report

    async def _process(
        self, item: tuple[str, bytes | InputError], row: InputReport, report: RunReport, ids: DocumentIds
    ) -> None:
        from pipeline.ingest.documents import document_id, ingest

        source, payload = item
        started = time.monotonic()
        try:
            if isinstance(payload, InputError):
                raise payload
            base_id = ids.claim(document_id(source))
            key = self._results_key(payload, source, base_id)
            cached = self.results_cache.get(key) if self.results_cache and key else None
            if cached is not None:
                self._reuse(cached, row, report)
            else:
                done = await self._summarize_all(ingest(payload, source, base_id), row, report)
                if self.results_cache and key:
                    entries = [{"result": result.to_json(), "files": list(files)} for result, files in done]
                    self.results_cache.put(key, {"results": entries})
            row.status = "ok"
        except BriefError as exc:
            row.status, row.error = "failed", _one_line(str(exc) if isinstance(exc, InputError) else f"{source}: {exc}")
            if self.on_error:
                self.on_error(row.error)
        finally:
            row.elapsed_s = time.monotonic() - started

    def _results_key(self, payload: bytes, source: str, base_id: str) -> str | None:
        fingerprint = self.summarizer.fingerprint()
        if fingerprint is None:
            return None
        from pipeline.cache import cache_key

        digest = hashlib.sha256(payload).hexdigest()
        return cache_key({"results": fingerprint, "input": digest, "source": source, "id": base_id})

    def _reuse(self, cached: dict[str, Any], row: InputReport, report: RunReport) -> None:
        """Results of an unchanged input: their model calls count as cache hits."""
        for entry in cached["results"]:
            result = ArticleResult.from_json(entry["result"])
            json_text, markdown = entry["files"]
            calls = result.usage.requests + result.usage.cache_hits
            result.usage = Usage(cache_hits=calls)
            self._record(result, row, report, (json_text, markdown))

    def _record(self, result: ArticleResult, row: InputReport, report: RunReport, rendered: tuple[str, str]) -> None:
        row.documents.append(result.id)
        row.usage.add(result.usage)
        report.results.append(result)
        if self.out_dir is not None:
            write_article(self.out_dir, result, rendered)

    async def _summarize_all(
        self, documents: list[Document], row: InputReport, report: RunReport
    ) -> list[tuple[ArticleResult, tuple[str, str]]]:
        """Summarise every story of one input; all must succeed for the input to count as done.

        Returns each result with its rendered files (<id>.json, <id>.md), rendered once.
        """
        errors: list[str] = []
        done: list[tuple[ArticleResult, tuple[str, str]]] = []
        for doc in documents:
            try:
                result = await self.summarizer.summarize(doc)
            except BriefError as exc:
                errors.append(f"{doc.id}: {exc}")
                continue
            rendered = render_article(result)
            done.append((result, rendered))
            self._record(result, row, report, rendered)
        if errors:
            raise _DocumentsFailed("; ".join(errors))
        return done

    async def _finish(self, report: RunReport) -> None:
        """Harmonise the glossary over the run and ask for the briefing."""
        report.results.sort(key=lambda r: r.id)
        before = [_renderings(r) for r in report.results]
        terms, conflicts = harmonise_run(report.results)
        report.glossary_conflicts = [c.to_json() for c in conflicts]
        if self.out_dir is None:
            return
        for result, renderings in zip(report.results, before, strict=True):
            if _renderings(result) != renderings:  # harmonising changed a term's English: rewrite
                write_article(self.out_dir, result)
        write_glossary(self.out_dir, terms, conflicts, report.mode)
        if report.results:
            try:
                overview, groups = await self.summarizer.briefing(report.results, report.briefing_usage)
            except BriefError as exc:
                from pipeline.model.briefing import group_by_shared_terms

                report.briefing_error = _one_line(f"briefing: {exc}")
                if self.on_error:
                    self.on_error(report.briefing_error)
                overview, groups = f"(No overview: {report.briefing_error})", group_by_shared_terms(report.results)
        else:
            overview, groups = "No article could be processed.", []
        failures = [(i.source, i.error or i.status) for i in report.failed]
        text = briefing_markdown(overview, groups, report.results, terms, report.mode, failures)
        write_atomic(self.out_dir / "briefing.md", text)

    def _write_run_files(self, report: RunReport) -> None:
        if self.client_stats:
            report.client_stats = self.client_stats()
        if self.out_dir is not None:
            write_atomic(self.out_dir / "run.json", dump_json(report.to_manifest()))


class _DocumentsFailed(BriefError):
    """Some documents of one input failed; the others were written."""


def _renderings(result: ArticleResult) -> list[tuple[str, str]]:
    return [(entry.target, entry.kind) for entry in result.glossary]


def _one_line(text: str) -> str:
    return " ".join(text.split())
