"""Polite, bounded HTTP GETs for pages and feeds: limits, retries, redirects, robots.txt, validators, disk cache.

Every failure is a FetchError (an InputError) naming the URL without credentials and saying why in a few
words; the caller turns it into that one input's error and goes on with the rest.

    async with Fetcher(cache_dir=Path("~/.cache/brief")) as fetcher:
        page = await fetcher.get("https://news.example.com/a/1.html")
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib.metadata
import logging
import time
import urllib.robotparser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx2 as httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from pipeline.errors import InputError
from pipeline.sources.urls import is_web_url, strip_credentials
from pipeline.sources.webcache import PageCache

log = logging.getLogger(__name__)

PROJECT_URL = "https://github.com/brief-news/brief"  # TODO(lead): the real repository address


def _version() -> str:
    try:
        return importlib.metadata.version("brief")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


USER_AGENT = f"brief/{_version()} (+{PROJECT_URL}; news briefing tool)"
ACCEPT = "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,application/xml;q=0.9,*/*;q=0.5"
_REDIRECTS = {301, 302, 303, 307, 308}
_TRANSIENT = {408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
_ROBOTS_MAX_BYTES = 512 * 1024
Sleep = Callable[[float], Awaitable[None]]


class FetchError(InputError):
    """A URL could not be fetched; `reason` is short and never holds credentials."""

    def __init__(self, source: str, reason: str, transient: bool = False) -> None:
        super().__init__(source, reason)
        self.transient = transient  # the network or the server failed, not the page: a cached copy may serve


class _Transient(Exception):
    """A failure worth another try (429, 5xx, timeouts, dropped connections)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Fetched:
    """One page or feed as fetched (or as served from the cache)."""

    url: str  # as asked, credentials stripped
    final_url: str  # after redirects, credentials stripped
    body: bytes
    content_type: str  # media type, lower-case: "text/html", "application/rss+xml", ...
    charset: str | None  # from the Content-Type header
    from_cache: bool = False  # answered 304 (or offline) and served from the disk cache


@dataclass(frozen=True)
class _Hop:
    status: int
    body: bytes = b""
    location: str | None = None
    content_type: str = ""
    charset: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    retry_after: str | None = None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def _content_type(header: str | None) -> tuple[str, str | None]:
    if not header:
        return "", None
    kind, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return kind.strip().lower(), charset


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """(URL without userinfo, (user, password) or None): credentials travel as an auth header only."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    return strip_credentials(url), (unquote(parts.username or ""), unquote(parts.password or ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2].lower()}"


class Fetcher:
    """An HTTP client with a global and a per-host concurrency limit, used by one run."""

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        offline: bool = False,
        ignore_robots: bool = False,
        concurrency: int = 16,
        per_host: int = 4,
        timeout: float = 20.0,
        max_bytes: int = 5_000_000,
        max_redirects: int = 5,
        max_attempts: int = 4,
        max_retry_after: float = 120.0,
        user_agent: str = USER_AGENT,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cache = PageCache(Path(cache_dir) / "web") if cache_dir is not None else None
        self.offline = offline
        self.ignore_robots = ignore_robots
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.max_attempts = max(1, max_attempts)
        self.max_retry_after = max_retry_after
        self.user_agent = user_agent
        self._sleep = sleep
        self._backoff = wait_exponential_jitter(multiplier=0.5, max=10.0, jitter=0.5)
        self._all = asyncio.Semaphore(max(1, concurrency))
        self._per_host = max(1, per_host)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._robots: dict[str, asyncio.Task[urllib.robotparser.RobotFileParser | str | None]] = {}
        self.requests = 0  # HTTP requests sent, robots.txt included
        self.cache_hits = 0
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": user_agent, "Accept": ACCEPT, "Accept-Language": "zh,en;q=0.8,*;q=0.5"},
            limits=httpx.Limits(max_connections=max(1, concurrency), max_keepalive_connections=max(1, concurrency)),
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task in self._robots.values():
            task.cancel()
        await self._client.aclose()

    async def get(self, url: str) -> Fetched:
        """The body at `url` after redirects; FetchError names the URL (without credentials) and the reason."""
        shown = strip_credentials(url)
        if not is_web_url(url):
            raise FetchError(shown, "not an http(s) URL")
        cached = self.cache.get(url) if self.cache is not None else None
        if self.offline:
            if cached is None:
                raise FetchError(shown, "not in the cache (offline: nothing is fetched)")
            self.cache_hits += 1
            record, body = cached
            return Fetched(shown, record.final_url, body, record.content_type, record.charset, from_cache=True)
        try:
            return await self._fetch(url, shown, cached)
        except FetchError as exc:
            if not exc.transient or cached is None:
                raise
            # Offline, or the site is down: the copy fetched by an earlier run is what we have.
            log.warning("%s: %s; using the copy fetched earlier", shown, exc.reason)
            self.cache_hits += 1
            record, body = cached
            return Fetched(shown, record.final_url, body, record.content_type, record.charset, from_cache=True)

    async def _fetch(self, url: str, shown: str, cached: tuple[Any, bytes] | None) -> Fetched:
        target, auth = _split_credentials(url)
        visited = [target]
        for _hop in range(self.max_redirects + 1):
            current = visited[-1]
            await self._check_robots(current, shown)
            validators: dict[str, str] = {}
            if cached is not None and cached[0].final_url == current:
                validators = {
                    k: v
                    for k, v in (("If-None-Match", cached[0].etag), ("If-Modified-Since", cached[0].last_modified))
                    if v
                }
            hop_auth = auth if auth and _origin(current) == _origin(target) else None
            hop = await self._with_retries(current, shown, validators, hop_auth)
            if hop.status in _REDIRECTS:
                if not hop.location:
                    raise FetchError(shown, f"HTTP {hop.status} redirect without a Location")
                following = urljoin(current, hop.location.strip())
                if not is_web_url(following):
                    raise FetchError(shown, "redirected to a non-http(s) address")
                following = strip_credentials(following)
                if following in visited:
                    raise FetchError(shown, "redirect loop")
                visited.append(following)
                continue
            if hop.status == 304:
                if cached is None:
                    raise FetchError(shown, "HTTP 304 for a page that is not cached")
                self.cache_hits += 1
                record, body = cached
                return Fetched(shown, current, body, record.content_type, record.charset, from_cache=True)
            if self.cache is not None:
                self.cache.put(
                    url,
                    current,
                    hop.body,
                    content_type=hop.content_type,
                    charset=hop.charset,
                    etag=hop.etag,
                    last_modified=hop.last_modified,
                    fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
                )
            return Fetched(shown, current, hop.body, hop.content_type, hop.charset)
        raise FetchError(shown, f"more than {self.max_redirects} redirects")

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Transient) and error.retry_after is not None:
            return error.retry_after
        return float(self._backoff(state))

    async def _with_retries(self, url: str, shown: str, headers: dict[str, str], auth: tuple[str, str] | None) -> _Hop:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    hop = await self._attempt(url, shown, headers, auth)
                    if hop.status in _TRANSIENT:
                        wait = retry_after_seconds(hop.retry_after)
                        if wait is not None and wait > self.max_retry_after:
                            raise FetchError(shown, f"HTTP {hop.status}, asked to retry after {wait:.0f} s")
                        raise _Transient(f"HTTP {hop.status}", wait)
                    return hop
        except _Transient as exc:
            tries = f" after {self.max_attempts} attempts" if self.max_attempts > 1 else ""
            raise FetchError(shown, f"{exc.reason}{tries}", transient=True) from None
        raise FetchError(shown, "no attempt made")  # unreachable: tenacity always makes one

    def _host_limit(self, url: str) -> asyncio.Semaphore:
        origin = _origin(url)
        if origin not in self._hosts:
            self._hosts[origin] = asyncio.Semaphore(self._per_host)
        return self._hosts[origin]

    async def _attempt(self, url: str, shown: str, headers: dict[str, str], auth: tuple[str, str] | None) -> _Hop:
        """One GET, bounded in time and size; transient failures raise _Transient."""
        # The host's slot first: requests queued for a busy host must not hold global slots others could use.
        async with self._host_limit(url), self._all:
            self.requests += 1
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._send(url, shown, headers, auth)
            except (TimeoutError, httpx.TimeoutException):
                raise _Transient(f"timed out after {self.timeout:g} s") from None
            except (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
                raise _Transient(_network_reason(exc)) from None
            except httpx.DecodingError:
                raise FetchError(shown, "undecodable content encoding") from None
            except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
                raise FetchError(shown, f"invalid request ({type(exc).__name__})") from None
            except httpx.HTTPError as exc:
                raise FetchError(shown, _network_reason(exc)) from None

    async def _send(self, url: str, shown: str, headers: dict[str, str], auth: tuple[str, str] | None) -> _Hop:
        async with self._client.stream("GET", url, headers=headers, auth=auth) as response:
            status = response.status_code
            if status in _REDIRECTS:
                return _Hop(status, location=response.headers.get("location"))
            if status in _TRANSIENT:  # retried (or not) by _with_retries, which reads Retry-After
                return _Hop(status, retry_after=response.headers.get("retry-after"))
            if status == 304:
                return _Hop(status)
            if status >= 400:
                raise FetchError(shown, f"HTTP {status} {response.reason_phrase}".strip())
            if status != 200:
                raise FetchError(shown, f"HTTP {status}: not a page")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise FetchError(shown, f"too large: {int(declared) / 1e6:.1f} MB (limit {self.max_bytes / 1e6:g} MB)")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise FetchError(shown, f"too large: over {self.max_bytes / 1e6:g} MB")
            kind, charset = _content_type(response.headers.get("content-type"))
            return _Hop(
                status,
                bytes(body),
                content_type=kind,
                charset=charset,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )

    async def _check_robots(self, url: str, shown: str) -> None:
        if self.ignore_robots:
            return
        origin = _origin(url)
        if origin not in self._robots:
            self._robots[origin] = asyncio.ensure_future(self._load_robots(origin))
        rules = await asyncio.shield(self._robots[origin])
        if isinstance(rules, str):
            raise FetchError(shown, f"{rules} (pass ignore_robots to fetch anyway)")
        if rules is not None and not rules.can_fetch(self.user_agent, url):
            raise FetchError(shown, "disallowed by robots.txt (pass ignore_robots to fetch anyway)")

    async def _load_robots(self, origin: str) -> urllib.robotparser.RobotFileParser | str | None:
        """The origin's rules; None allows everything (no robots.txt), a string explains a refusal."""
        location = f"{origin}/robots.txt"
        try:
            for _ in range(5):  # RFC 9309: follow at least five redirects
                hop = await self._attempt(location, location, {}, None)
                if hop.status in _REDIRECTS and hop.location:
                    location = urljoin(location, hop.location)
                    continue
                break
        except (FetchError, _Transient):
            # 4xx: there is no robots.txt, everything is allowed; unreachable: the page's own fetch will say so.
            return None
        if hop.status in _TRANSIENT:  # RFC 9309: a server error on robots.txt means "assume complete disallow"
            return f"robots.txt unavailable (HTTP {hop.status})"
        if hop.status != 200:
            return None
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(hop.body[:_ROBOTS_MAX_BYTES].decode("utf-8", errors="replace").splitlines())
        return parser


def _network_reason(exc: Exception) -> str:
    """A short reason for a network error, without the URL (which may hold credentials)."""
    kind = {
        httpx.ConnectError: "cannot connect",
        httpx.ReadError: "connection dropped while reading",
        httpx.WriteError: "connection dropped while sending",
        httpx.RemoteProtocolError: "the server broke the HTTP protocol",
    }
    for cls, text in kind.items():
        if isinstance(exc, cls):
            detail = str(exc).split("\n", 1)[0]
            return f"{text} ({detail})" if detail and "://" not in detail and "@" not in detail else text
    return type(exc).__name__
