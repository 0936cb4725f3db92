"""The web source: article URLs, feed URLs, feed files, OPML files and URL lists -> RawInput, lazily and in order.

    async for raw in web_inputs(["https://example.com/feed.xml", "feeds.opml"], cache_dir=..., ...):
        ...  # raw.payload is the page (media_type "text/html"), raw.meta its title/date/author/site/canonical URL

What a target is comes from its content, not its name: a URL that answers with RSS is a feed, a file
whose first element is <opml> is an OPML file. Work runs ahead of the consumer by a bounded window
(fetches overlap, limited per host and overall by the Fetcher); inputs come out in the order named,
feed items in feed order. Every failure is one RawInput with an InputError; the rest goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from pipeline.errors import InputError
from pipeline.ingest.html import page_meta
from pipeline.records import DocumentMeta, RawInput
from pipeline.sources.feeds import FeedItem, is_url_list, item_document, parse_feed, parse_opml, parse_url_list, sniff
from pipeline.sources.fetch import Fetched, Fetcher
from pipeline.sources.seen import SeenStore, select_items, url_verdict
from pipeline.sources.urls import is_web_url, safe_id, short_hash, strip_credentials, url_id

log = logging.getLogger(__name__)

TargetKind = Literal["url", "feed_file", "opml", "url_list", "path"]
Expect = Literal["any", "feed", "page"]
# Files larger than this are articles or dumps, never a list of URLs, a feed or an OPML file we read whole.
MAX_LIST_BYTES = 5_000_000
_HTML_TYPES = {"text/html", "application/xhtml+xml"}


def classify_target(arg: str) -> TargetKind:
    """Where an argument goes: "url" (fetch it; feeds are found by content), "feed_file", "opml",
    "url_list" (one URL per line), or "path" (an article file or folder, for the files source)."""
    if is_web_url(arg):
        return "url"
    path = Path(arg)
    try:
        if arg == "-" or not path.is_file() or path.stat().st_size > MAX_LIST_BYTES:
            return "path"
        with path.open("rb") as handle:
            head = handle.read(65536)
    except OSError:
        return "path"
    kind = sniff(head)
    if kind == "feed":
        return "feed_file"
    if kind == "opml":
        return "opml"
    if kind == "unknown" and b"\x00" not in head and is_url_list(path.read_bytes().decode("utf-8", errors="replace")):
        return "url_list"
    return "path"


@dataclass
class WebStats:
    """What the source skipped and why, for run.json."""

    feeds: int = 0
    items: int = 0
    older_than_since: int = 0
    seen_before: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class _Target:
    arg: str


@dataclass(frozen=True)
class _Url:
    url: str
    expect: Expect
    defaults: DocumentMeta = field(default_factory=DocumentMeta)


@dataclass(frozen=True)
class _Item:
    item: FeedItem
    site: str | None


_Entry = _Target | _Url | _Item | RawInput


def _error(source: str, reason: str) -> RawInput:
    shown = strip_credentials(source)
    hint = url_id(shown) if is_web_url(shown) else Path(shown).stem or "input"
    return RawInput(source=shown, id_hint=hint, error=InputError(shown, reason))


class WebSource:
    """Inputs from the web for one run; iterate `inputs()` once. `stats` fills as it goes."""

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        since: datetime | None = None,
        new_only: bool = False,
        seen: SeenStore | None = None,
        window: int = 32,
    ) -> None:
        self.fetcher = fetcher
        self.since = since
        self.new_only = new_only
        self.seen = seen
        self.window = max(1, window)
        self.stats = WebStats()
        self._taken: set[str] = set()  # canonical URLs already on their way in this run

    async def inputs(self, targets: Sequence[str]) -> AsyncIterator[RawInput]:
        async for raw in self._stream(_Target(arg) for arg in targets):
            yield raw

    async def _stream(self, entries: Iterable[_Entry]) -> AsyncIterator[RawInput]:
        """Resolve entries up to `window` ahead, yield in order; an entry may expand into more entries."""
        pending: deque[asyncio.Task[RawInput | list[_Entry]]] = deque()
        upcoming = iter(entries)

        def refill() -> None:
            while len(pending) < self.window and (entry := next(upcoming, None)) is not None:
                pending.append(asyncio.ensure_future(self._resolve(entry)))

        refill()
        try:
            while pending:
                result = await pending.popleft()
                refill()
                if isinstance(result, RawInput):
                    yield result
                else:
                    async for raw in self._stream(result):
                        yield raw
        finally:
            for task in pending:
                task.cancel()

    async def _resolve(self, entry: _Entry) -> RawInput | list[_Entry]:
        try:
            if isinstance(entry, RawInput):
                return entry
            if isinstance(entry, _Target):
                kind = classify_target(entry.arg)
                if kind == "url":  # fetched right here, so the window overlaps it with the next targets
                    return await self._url(_Url(entry.arg, "any")) if self._fresh(entry.arg) else []
                return self._target(entry.arg, kind)
            if isinstance(entry, _Item):
                return self._item(entry.item, entry.site)
            return await self._url(entry)
        except InputError as exc:
            return _error(exc.source, exc.reason)
        except OSError as exc:
            where = entry.arg if isinstance(entry, _Target) else "input"
            return _error(where, exc.strerror or type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - one odd input must never end the run
            where = entry.url if isinstance(entry, _Url) else entry.arg if isinstance(entry, _Target) else "input"
            log.exception("unexpected failure on %s", strip_credentials(where))
            return _error(where, f"internal error: {type(exc).__name__}")

    def _fresh(self, url: str) -> bool:
        """True the first time a URL comes up in this run (and, with new_only, if never summarised)."""
        verdict = url_verdict(url, new_only=self.new_only, seen=self.seen, taken=self._taken)
        self.stats.duplicates += verdict == "duplicate"
        self.stats.seen_before += verdict == "seen"
        return verdict == "new"

    def _target(self, arg: str, kind: TargetKind) -> RawInput | list[_Entry]:
        if kind == "path":
            return _error(arg, "not a URL, feed, OPML file or URL list")
        payload = Path(arg).read_bytes()
        if kind == "feed_file":
            return self._feed_entries(payload, arg, base_url=None, content_type=None)
        if kind == "opml":
            urls, errors = parse_opml(payload, arg)
            return [*(_error(e.source, e.reason) for e in errors), *(_Url(u, "feed") for u in urls)]
        urls, errors = parse_url_list(payload.decode("utf-8", errors="replace"), arg)
        fresh = [_Url(u, "any") for u in urls if self._fresh(u)]
        return [*(_error(e.source, e.reason) for e in errors), *fresh]

    def _feed_entries(
        self, payload: bytes, source: str, base_url: str | None, content_type: str | None
    ) -> list[_Entry]:
        feed = parse_feed(payload, source, base_url=base_url, content_type=content_type)
        chosen = select_items(feed.items, since=self.since, new_only=self.new_only, seen=self.seen, taken=self._taken)
        self.stats.feeds += 1
        self.stats.items += len(feed.items)
        self.stats.older_than_since += chosen.too_old
        self.stats.seen_before += chosen.seen_before
        self.stats.duplicates += chosen.duplicates
        return [_Item(item, feed.title) for item in chosen.items]

    def _item(self, item: FeedItem, site: str | None) -> RawInput | list[_Entry]:
        meta = item.meta(site)
        if item.full_html is not None:
            source = item.link or f"{item.feed_url}#{short_hash(item.guid or item.title or item.full_html)}"
            hint = url_id(item.link) if item.link else safe_id(f"{url_id(item.feed_url)}-{short_hash(source, 8)}")
            return RawInput(source, hint, item_document(item), media_type="text/html", charset="utf-8", meta=meta)
        assert item.link is not None  # parse_feed gives a link-less item its own text
        return [_Url(item.link, "page", meta)]

    async def _url(self, entry: _Url) -> RawInput | list[_Entry]:
        fetched = await self.fetcher.get(entry.url)
        kind = sniff(fetched.body)
        if entry.expect != "page" and kind == "feed":
            return self._feed_entries(fetched.body, fetched.url, fetched.final_url, fetched.content_type)
        if entry.expect == "any" and kind == "opml":
            urls, errors = parse_opml(fetched.body, fetched.url)
            return [*(_error(e.source, e.reason) for e in errors), *(_Url(u, "feed") for u in urls)]
        if entry.expect == "feed":
            return _error(fetched.url, f"not an RSS, Atom or RDF feed ({fetched.content_type or kind})")
        return await self._page(fetched, entry.defaults)

    async def _page(self, fetched: Fetched, defaults: DocumentMeta) -> RawInput:
        if fetched.content_type.startswith("text/plain"):
            meta = replace(defaults, url=fetched.final_url)
            hint = url_id(fetched.final_url)
            return RawInput(
                fetched.url, hint, fetched.body, media_type="text/plain", charset=fetched.charset, meta=meta
            )
        if fetched.content_type and fetched.content_type not in _HTML_TYPES and sniff(fetched.body) != "html":
            return _error(fetched.url, f"not an HTML page ({fetched.content_type})")
        # Parsing is CPU work: a worker thread keeps the event loop fetching meanwhile.
        found = await asyncio.to_thread(
            page_meta, fetched.body, charset=fetched.charset, url=fetched.final_url, source=fetched.url
        )
        meta = _merge(found, defaults)
        hint = url_id(meta.canonical_url or fetched.final_url)
        return RawInput(fetched.url, hint, fetched.body, media_type="text/html", charset=fetched.charset, meta=meta)


def _merge(page: DocumentMeta, item: DocumentMeta) -> DocumentMeta:
    """The page's own metadata, its gaps filled from the feed item; the feed's date wins (it is explicit)."""
    merged = replace(page, **{k: v for k, v in vars(item).items() if v and not getattr(page, k)})
    return replace(merged, published=item.published) if item.published else merged


async def web_inputs(
    targets: Sequence[str],
    *,
    cache_dir: Path | None,
    since: datetime | None,
    new_only: bool,
    seen: SeenStore | None,
    ignore_robots: bool,
    offline: bool,
    concurrency: int = 16,
    per_host: int = 4,
    timeout: float = 20,
    max_bytes: int = 5_000_000,
) -> AsyncGenerator[RawInput, None]:
    """Every input the targets lead to, in order, one RawInput each (an error is an input too)."""
    async with Fetcher(
        cache_dir=cache_dir,
        offline=offline,
        ignore_robots=ignore_robots,
        concurrency=concurrency,
        per_host=per_host,
        timeout=timeout,
        max_bytes=max_bytes,
    ) as fetcher:
        source = WebSource(fetcher, since=since, new_only=new_only, seen=seen, window=2 * concurrency)
        async for raw in source.inputs(targets):
            yield raw
