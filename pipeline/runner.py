"""The one orchestrator: sources -> documents -> results -> sinks, with a manifest of what happened.

Inputs are pulled from the sources lazily and processed a few at a time; each finished article is
kept (and stored in the results cache, so a killed run loses no paid-for work). At the end, or on
interruption, the run's glossary is harmonised, which gives new records, and every sink receives
each article exactly once, then the run (glossary, briefing, run.json).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.checks.review import RunNameReview, check_briefing_overview, check_totals
from pipeline.errors import BriefError, DuplicateInput, EndpointRejected, EndpointUnavailable, InputError
from pipeline.glossary import Conflict, RunGlossary, RunTerm
from pipeline.memory import GiveBack
from pipeline.records import ArticleResult, Briefing, CheckFlag, Document, InputReport, RawInput, Usage
from pipeline.responsive import Pacer, load_in_thread
from pipeline.results import ResultStore
from pipeline.run_report import RunReport, RunRows
from pipeline.terminal import one_line

if TYPE_CHECKING:
    from pipeline.cache import Cache

log = logging.getLogger(__name__)

ProgressHook = Callable[[int, int | None], None]
Notify = Callable[[str], None]


class Summarizer(Protocol):
    """Either path: the model (model.summarize.ModelSummarizer) or the offline triage."""

    @property
    def mode(self) -> str: ...

    @property
    def model(self) -> str | None: ...

    async def summarize(self, doc: Document) -> ArticleResult: ...

    async def briefing(self, results: Collection[ArticleResult]) -> Briefing:
        """The run's briefing; `results` may be a spilled store: read it as often as needed, never hold it."""

    def fingerprint(self) -> str | None:
        """What decides a result besides the input bytes; None when results are not worth caching."""


@dataclass
class RunOutcome:
    """What the sinks receive at the end: the manifest, the results, the harmonised glossary and the briefing."""

    report: RunReport
    results: ResultStore = field(default_factory=ResultStore)  # harmonised and reviewed, in id order
    terms: list[RunTerm] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    briefing: Briefing | None = None


class Sink(Protocol):
    """Where results go: a folder of files, stdout, run.json."""

    def article(self, result: ArticleResult) -> None:
        """Take one finished, harmonised article (each exactly once, in id order, before `finish`)."""

    def finish(self, outcome: RunOutcome) -> None:
        """Take the run: its glossary, briefing and manifest."""


Ingest = Callable[[RawInput, str], Awaitable[list[Document]]]


class _Stopped(BriefError):
    """A fatal error (a rejected key) stopped the run; remaining inputs are skipped."""


@dataclass
class Runner:
    """One `brief summarize` run over some inputs."""

    summarizer: Summarizer
    ingest: Ingest  # RawInput, claimed id -> its documents (one per story)
    sinks: Sequence[Sink] = ()
    claim_id: Callable[[str], str] = lambda wanted: wanted
    endpoint: str | None = None
    max_parallel_inputs: int = 16
    progress: ProgressHook | None = None
    on_error: Notify | None = None
    client_stats: Callable[[], dict[str, Any]] | None = None
    results_cache: Cache | None = None  # whole-article results by input bytes: re-runs skip every stage
    total: int | None = None  # inputs expected, when the sources know it (for progress)
    strict: bool = False  # an article with unverified statements fails its input (--strict)
    pinyin_of: Callable[[str], str] | None = None  # for the run-level name check
    # One-time loads of the article path (OpenCC, the tokenizer), run in a thread before the first
    # article that is not in the results cache: not a stall on the loop, and never paid by a cached re-run.
    warm_up: Callable[[], None] | None = None
    spill_after: int | None = None  # results held as objects before they go to a temporary file (None: SPILL_AFTER)
    _fatal: BriefError | None = None
    _store: ResultStore = field(init=False)
    _settled: asyncio.Future[_Settled] | None = field(default=None, init=False)
    _sinks_done: asyncio.Future[None] | None = field(default=None, init=False)
    _warming: asyncio.Future[None] | None = field(default=None, init=False)
    _give_back: GiveBack = field(default_factory=GiveBack, init=False)  # freed memory back to the system, as it goes

    async def run(self, inputs: AsyncIterable[RawInput] | Iterable[RawInput]) -> RunReport:
        """Process every input; on cancellation keep what finished and mark the run interrupted."""
        rows = RunRows(spill_after=self.spill_after)
        report = RunReport(self.summarizer.mode, self.summarizer.model, self.endpoint, rows)
        self._store = ResultStore(spill_after=self.spill_after)
        self._settled = self._sinks_done = None  # a Runner may run again
        started = time.monotonic()
        gate = asyncio.Semaphore(self.max_parallel_inputs)
        # Only unfinished tasks are held (a finished one leaves the set): 100,000 inputs, not 100,000 tasks.
        tasks: set[asyncio.Task[None]] = set()
        crashed: list[BaseException] = []
        done = 0

        def settle(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                crashed.append(task.exception())  # type: ignore[arg-type]

        async def one(raw: RawInput, row: InputReport, position: int, doc_id: str) -> None:
            nonlocal done
            try:
                await self._process(raw, row, doc_id, report)
            finally:
                rows.done(position)
                gate.release()
                done += 1
                self._give_back.tick()
                if self.progress:
                    self.progress(done, self.total)

        try:
            pacer = Pacer()  # reading inputs and claiming ids is loop work: 640 of them were a 16 ms stall
            async for raw in _aiter(inputs):
                await pacer.turn()
                await gate.acquire()
                row = InputReport(raw.source)
                position = rows.add(row)
                if self._fatal is not None:
                    gate.release()
                    self._skip(row)
                    rows.done(position)
                    continue
                task = asyncio.create_task(one(raw, row, position, self.claim_id(raw.id_hint)))
                tasks.add(task)
                task.add_done_callback(settle)
            await asyncio.gather(*tasks)
            if crashed:  # a bug, not an input's failure (those are recorded in its row): as gather would
                raise crashed[0]
            if self._fatal is not None:
                report.fatal_error = str(self._fatal)
                report.fatal_exit_code = self._fatal.exit_code
            await self._finish(report, interrupted=False)
        except asyncio.CancelledError:
            if self._sinks_done is not None:  # the run was complete: its last writes finish, then the stop
                await asyncio.shield(self._sinks_done)
                raise
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            report.interrupted = True
            rows.interrupted()
            report.elapsed_s = time.monotonic() - started
            await self._finish(report, interrupted=True)
            raise
        finally:
            report.elapsed_s = time.monotonic() - started
            self._store.close()
        return report

    async def _warmed(self) -> None:
        if self._warming is None:
            assert self.warm_up is not None
            self._warming = asyncio.ensure_future(load_in_thread(self.warm_up))
        await asyncio.shield(self._warming)  # one load for all: a cancelled waiter does not cancel it

    def _skip(self, row: InputReport) -> None:
        row.status, row.error = "skipped", one_line(f"{row.source}: not attempted: {self._fatal}")

    async def _process(self, raw: RawInput, row: InputReport, doc_id: str, report: RunReport) -> None:
        started = time.monotonic()
        try:
            if raw.error is not None:
                raise raw.error
            if self._fatal is not None:
                self._skip(row)
                return
            key = self._results_key(raw, doc_id)
            cached = self.results_cache.get(key) if self.results_cache and key else None
            results = self._reuse(cached) if cached is not None else None
            errors: list[str] = []
            reused = results is not None
            if results is None:
                if self.warm_up is not None:  # the run's first article to summarise: one-time loads, in a thread
                    await self._warmed()
                results, errors = await self._summarize_all(await self.ingest(raw, doc_id))
                if self.results_cache and key and not errors:
                    self.results_cache.put(key, {"results": [r.to_json() for r in results]})
            for result in results:  # stories that succeeded are kept even when a sibling failed
                row.documents.append(result.id)
                # A reused result cost this run no request: its calls count as cache hits here,
                # while the article keeps the record of what producing it cost.
                calls = result.usage.requests + result.usage.cache_hits
                row.usage = row.usage + (Usage(cache_hits=calls) if reused else result.usage)
                report.documents += 1
                report.dropped_terms += result.dropped_terms
                self._store.add(result)
            if errors:
                raise _DocumentsFailed("; ".join(errors))
            unverified = [r for r in results if r.checks]
            if self.strict and unverified:
                count = sum(len(r.checks) for r in unverified)
                raise _DocumentsFailed(
                    f"{count} unverified statement(s) (--strict): see the Checks of {unverified[0].id}"
                )
            row.status = "ok"
        except _Stopped:
            self._skip(row)
        except DuplicateInput as exc:
            row.status, row.error = "duplicate", one_line(str(exc))
        except BriefError as exc:
            message = str(exc) if isinstance(exc, InputError) else f"{raw.source}: {exc}"
            row.status, row.error = "failed", one_line(message)
            if self.on_error:
                self.on_error(row.error)
        finally:
            row.elapsed_s = time.monotonic() - started

    def _results_key(self, raw: RawInput, doc_id: str) -> str | None:
        fingerprint = self.summarizer.fingerprint()
        if fingerprint is None or raw.payload is None:
            return None
        from pipeline.cache import cache_key

        digest = hashlib.sha256(raw.payload).hexdigest()
        meta = raw.meta.to_json() if not raw.meta.is_empty() else None
        parts: dict[str, Any] = {"results": fingerprint, "input": digest, "source": raw.source, "id": doc_id}
        if meta or raw.media_type != "text/plain":
            parts["meta"], parts["media_type"] = meta, raw.media_type
        return cache_key(parts)

    @staticmethod
    def _reuse(cached: dict[str, Any]) -> list[ArticleResult] | None:
        """Results of an unchanged input, or None for an entry this version of brief cannot read."""
        try:
            return [ArticleResult.from_json(entry) for entry in cached["results"]]
        except (KeyError, TypeError, ValueError):
            return None

    async def _summarize_all(self, documents: list[Document]) -> tuple[list[ArticleResult], list[str]]:
        """Summarise every story of one input (together); the results, and an error line per failed story."""
        outcomes = await asyncio.gather(*(self._summarize_one(doc) for doc in documents), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, BriefError):
                raise outcome
        if any(isinstance(o, _Stopped) for o in outcomes):
            raise _Stopped()
        errors = [f"{doc.id}: {o}" for doc, o in zip(documents, outcomes, strict=True) if isinstance(o, BriefError)]
        return [o for o in outcomes if isinstance(o, ArticleResult)], errors

    async def _summarize_one(self, doc: Document) -> ArticleResult:
        try:
            return await self.summarizer.summarize(doc)
        except (EndpointRejected, EndpointUnavailable) as exc:
            if isinstance(exc, EndpointUnavailable) or exc.fatal:
                if self._fatal is None:
                    self._fatal = exc
                    if self.on_error:
                        self.on_error(one_line(f"stopping: {exc}"))
                raise _Stopped() from exc
            raise

    async def _finish(self, report: RunReport, interrupted: bool) -> None:
        """Harmonise the glossary over the run, write the articles, ask for the briefing, finish the sinks.

        The passes over the results run in a thread (the loop stays free), once: after a Ctrl-C
        during them, the interrupted run's finish waits for the same work instead of redoing it.
        """
        if self._settled is None:
            self._settled = asyncio.ensure_future(asyncio.to_thread(self._settle, report))
        settled = await asyncio.shield(self._settled)
        for line in self._store.errors:
            log.warning("%s", line)
        briefing = None
        if not interrupted and self._fatal is None and len(settled.results):
            briefing = await self._briefing(settled.results, report)
        if self.client_stats:
            report.client_stats = self.client_stats()
        overview_checks = briefing.checks if briefing else ()
        report.checks = check_totals(settled.flag_kinds, settled.flagged_articles, overview_checks)
        outcome = RunOutcome(report, settled.results, settled.terms, settled.conflicts, briefing)
        self._sinks_done = asyncio.ensure_future(asyncio.to_thread(self._finish_sinks, outcome))
        await asyncio.shield(self._sinks_done)

    def _finish_sinks(self, outcome: RunOutcome) -> None:
        for sink in self.sinks:
            sink.finish(outcome)

    def _settle(self, report: RunReport) -> _Settled:
        """Three passes over the finished results: the glossary's votes, the names, then each final article.

        Each final article goes to every sink at once and replaces its first version in the store
        (the briefing reads it): one index of the run's articles, not two at once.
        """
        store = self._store
        glossary = RunGlossary()
        for result in store:
            glossary.add(result)
        terms, conflicts = glossary.finish()
        report.glossary_conflicts = [c.to_json() for c in conflicts]
        names = RunNameReview([t.entry for t in terms], self.pinyin_of)
        for result in store:
            names.add(result)
        kinds: Counter[str] = Counter()
        flagged = 0
        for doc_id in store.ids():
            before = store.get(doc_id)
            if before is None:  # its line no longer reads (recorded in store.errors): not in the outputs
                store.discard(doc_id)
                continue
            result = names.review(before, glossary.apply(before))
            store.add(result)
            kinds.update(flag.kind for flag in result.checks)
            flagged += bool(result.checks)
            for sink in self.sinks:
                sink.article(result)
            self._give_back.tick()
        return _Settled(store, terms, conflicts, kinds, flagged)

    async def _briefing(self, results: ResultStore, report: RunReport) -> Briefing:
        try:
            briefing = await self.summarizer.briefing(results)
        except BriefError as exc:
            from pipeline.grouping import group_by_shared_terms

            report.briefing_error = one_line(f"briefing: {exc}")
            if self.on_error:
                self.on_error(report.briefing_error)
            groups = await asyncio.to_thread(group_by_shared_terms, results)
            return Briefing(f"(No overview: {report.briefing_error})", groups, error=str(exc))
        report.briefing_usage = briefing.usage
        if self.summarizer.mode == "model":  # the offline overview is brief's own sentence, not a claim
            checks = await asyncio.to_thread(_check_overview, briefing, results)  # reads articles back: a thread
            if checks:
                briefing = replace(briefing, checks=checks)
        return briefing


def _check_overview(briefing: Briefing, results: ResultStore) -> tuple[CheckFlag, ...]:
    covered = [r for r in map(results.get, briefing.covered) if r is not None]
    return check_briefing_overview(briefing.overview, covered)


@dataclass
class _Settled:
    """The run's results after the end's passes, and what they add up to."""

    results: ResultStore
    terms: list[RunTerm]
    conflicts: list[Conflict]
    flag_kinds: Counter[str]
    flagged_articles: int


class _DocumentsFailed(BriefError):
    """Some documents of one input failed; the others are not written either (the input is retried whole)."""


async def _aiter(inputs: AsyncIterable[RawInput] | Iterable[RawInput]) -> AsyncIterator[RawInput]:
    if isinstance(inputs, AsyncIterable):
        async for item in inputs:
            yield item
    else:
        for item in inputs:
            yield item
