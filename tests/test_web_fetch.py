"""The fetcher against a real loopback server: limits, retries, redirects, robots.txt, validators, cache, secrets."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.sources.fetch import Fetched, Fetcher, FetchError, retry_after_seconds
from tests.webserver import Reply, WebServer


@pytest.fixture
def server() -> Iterator[WebServer]:
    with WebServer() as running:
        yield running


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def get(url: str, **options: Any) -> Fetched:
    async def go() -> Fetched:
        async with Fetcher(**options) as fetcher:
            return await fetcher.get(url)

    return asyncio.run(go())


def get_all(urls: list[str], **options: Any) -> list[Fetched | FetchError]:
    async def go() -> list[Fetched | FetchError]:
        async with Fetcher(**options) as fetcher:
            results = await asyncio.gather(*(fetcher.get(u) for u in urls), return_exceptions=True)
        return [r if isinstance(r, Fetched | FetchError) else pytest.fail(repr(r)) for r in results]

    return asyncio.run(go())


def fails(url: str, **options: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        get(url, **options)
    return caught.value


def test_page_is_fetched_with_our_user_agent_and_charset(server: WebServer) -> None:
    server.page("/a.html", "<p>新闻</p>".encode("gbk"), charset="GBK")
    page = get(server.url("/a.html"))
    assert (page.body.decode("gbk"), page.content_type, page.charset) == ("<p>新闻</p>", "text/html", "GBK")
    agent = server.hits("/a.html")[0].headers["user-agent"]
    assert agent.startswith("brief/") and "news briefing tool" in agent and "+http" in agent


def test_per_host_limit(server: WebServer) -> None:
    for n in range(6):
        server.add(f"/slow{n}", Reply(body=b"x", delay=0.3))
    results = get_all([server.url(f"/slow{n}") for n in range(6)], per_host=2, concurrency=16, ignore_robots=True)
    assert all(isinstance(r, Fetched) for r in results)
    assert server.peak_in_flight == 2


def test_global_limit_across_hosts(server: WebServer) -> None:
    for n in range(6):
        server.add(f"/slow{n}", Reply(body=b"x", delay=0.3))
    urls = [server.url(f"/slow{n}", host="127.0.0.1" if n % 2 else "localhost") for n in range(6)]
    results = get_all(urls, per_host=4, concurrency=3, ignore_robots=True)
    assert all(isinstance(r, Fetched) for r in results)
    assert server.peak_in_flight == 3


def test_timeout_is_retried_then_reported(server: WebServer) -> None:
    server.add("/slow", Reply(body=b"late", delay=1.5))
    sleeps = Sleeps()
    error = fails(server.url("/slow"), timeout=0.3, max_attempts=2, sleep=sleeps)
    assert error.reason == "timed out after 0.3 s after 2 attempts"
    assert len(server.hits("/slow")) == 2 and len(sleeps) == 1


def test_size_cap_by_content_length_and_while_streaming(server: WebServer) -> None:
    big = b"<p>" + b"x" * 200_000 + b"</p>"
    server.add("/big", Reply(body=big, headers={"Content-Type": "text/html"}))
    server.add("/big-unknown-length", Reply(body=big, send_length=False))
    assert fails(server.url("/big"), max_bytes=50_000).reason == "too large: 0.2 MB (limit 0.05 MB)"
    assert fails(server.url("/big-unknown-length"), max_bytes=50_000).reason == "too large: over 0.05 MB"


def test_redirects_are_followed_to_the_final_url(server: WebServer) -> None:
    server.redirect("/old", "/middle", 301)
    server.redirect("/middle", server.url("/new"), 307)
    server.page("/new", b"<p>moved</p>")
    page = get(server.url("/old"))
    assert page.body == b"<p>moved</p>" and page.final_url == server.url("/new") and page.url == server.url("/old")


def test_redirect_loop_and_redirect_cap(server: WebServer) -> None:
    server.redirect("/a", "/b")
    server.redirect("/b", "/a")
    assert fails(server.url("/a")).reason == "redirect loop"
    for n in range(7):
        server.redirect(f"/r{n}", f"/r{n + 1}")
    server.page("/r7", b"end")
    assert fails(server.url("/r0"), max_redirects=5).reason == "more than 5 redirects"
    assert len(server.hits("/r6")) == 0


def test_429_with_retry_after_then_500_then_success(server: WebServer) -> None:
    server.sequence("/flaky", [Reply(429, headers={"Retry-After": "7"}), Reply(500), Reply(body=b"ok")])
    sleeps = Sleeps()
    assert get(server.url("/flaky"), sleep=sleeps).body == b"ok"
    assert len(server.hits("/flaky")) == 3
    assert sleeps[0] == 7.0 and 0 < sleeps[1] <= 10


def test_retry_after_beyond_the_limit_gives_up_at_once(server: WebServer) -> None:
    server.add("/busy", Reply(503, headers={"Retry-After": "3600"}))
    sleeps = Sleeps()
    error = fails(server.url("/busy"), sleep=sleeps, max_retry_after=60)
    assert error.reason == "HTTP 503, asked to retry after 3600 s"
    assert (len(server.hits("/busy")), sleeps) == (1, [])


def test_persistent_500_exhausts_attempts(server: WebServer) -> None:
    server.add("/down", Reply(500))
    error = fails(server.url("/down"), max_attempts=3, sleep=Sleeps())
    assert error.reason == "HTTP 500 after 3 attempts" and len(server.hits("/down")) == 3


def test_404_is_not_retried(server: WebServer) -> None:
    sleeps = Sleeps()
    error = fails(server.url("/missing"), sleep=sleeps)
    assert error.reason == "HTTP 404 Not Found" and error.source == server.url("/missing")
    assert (len(server.hits("/missing")), sleeps) == (1, [])


def test_connection_refused_is_one_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = fails(f"http://127.0.0.1:{port}/x", max_attempts=2, sleep=Sleeps())
    assert error.reason.startswith("cannot connect") and error.reason.endswith("after 2 attempts")


def test_etag_revalidation_reuses_the_stored_body(server: WebServer, tmp_path: Path) -> None:
    server.conditional("/e.html", "<p>第一版</p>".encode(), etag='"v1"')
    first = get(server.url("/e.html"), cache_dir=tmp_path)
    second = get(server.url("/e.html"), cache_dir=tmp_path)
    hits = server.hits("/e.html")
    assert "if-none-match" not in hits[0].headers and hits[1].headers["if-none-match"] == '"v1"'
    assert second.body == first.body == "<p>第一版</p>".encode() and second.from_cache and not first.from_cache


def test_last_modified_revalidation(server: WebServer, tmp_path: Path) -> None:
    stamp = "Wed, 15 May 2024 08:00:00 GMT"
    server.conditional("/lm.html", b"<p>v</p>", last_modified=stamp)
    get(server.url("/lm.html"), cache_dir=tmp_path)
    again = get(server.url("/lm.html"), cache_dir=tmp_path)
    assert server.hits("/lm.html")[1].headers["if-modified-since"] == stamp and again.from_cache


def test_offline_serves_only_the_cache(server: WebServer, tmp_path: Path) -> None:
    server.page("/o.html", b"<p>kept</p>")
    get(server.url("/o.html?utm_source=x"), cache_dir=tmp_path)
    before = len(server.requests)
    page = get(server.url("/o.html"), cache_dir=tmp_path, offline=True)  # same canonical URL
    assert page.body == b"<p>kept</p>" and page.from_cache
    assert "not in the cache" in fails(server.url("/never.html"), cache_dir=tmp_path, offline=True).reason
    assert len(server.requests) == before


def test_damaged_cache_entry_is_a_miss(server: WebServer, tmp_path: Path) -> None:
    server.page("/d.html", b"<p>good</p>")
    get(server.url("/d.html"), cache_dir=tmp_path)
    for body in tmp_path.rglob("*.body"):
        body.write_bytes(b"tampered")
    assert "not in the cache" in fails(server.url("/d.html"), cache_dir=tmp_path, offline=True).reason


def test_robots_txt_forbids_a_path_and_is_read_once(server: WebServer) -> None:
    server.page("/robots.txt", b"User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    server.page("/private/x.html", b"secret page")
    server.page("/public/y.html", b"open page")
    results = get_all([server.url("/private/x.html"), server.url("/public/y.html"), server.url("/public/y.html")])
    assert isinstance(results[0], FetchError) and "disallowed by robots.txt" in results[0].reason
    assert all(isinstance(r, Fetched) for r in results[1:])
    assert server.hits("/private/x.html") == [] and len(server.hits("/robots.txt")) == 1


def test_ignore_robots_fetches_anyway(server: WebServer) -> None:
    server.page("/robots.txt", b"User-agent: brief\nDisallow: /\n", content_type="text/plain")
    server.page("/p.html", b"page")
    assert get(server.url("/p.html"), ignore_robots=True).body == b"page"
    assert server.hits("/robots.txt") == []
    assert "robots.txt" in fails(server.url("/p.html")).reason


def test_robots_txt_server_error_means_disallow(server: WebServer) -> None:
    server.add("/robots.txt", Reply(503))
    server.page("/p.html", b"page")
    assert "robots.txt unavailable (HTTP 503)" in fails(server.url("/p.html")).reason
    assert server.hits("/p.html") == []


def test_credentials_are_sent_but_never_shown_logged_or_stored(
    server: WebServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.page("/feed.xml", b"<rss/>", content_type="application/rss+xml")
    caplog.set_level(logging.DEBUG)
    page = get(server.url("/feed.xml").replace("//", "//alice:s3cret@"), cache_dir=tmp_path)
    sent = server.hits("/feed.xml")[0].headers["authorization"]
    assert base64.b64decode(sent.split()[1]) == b"alice:s3cret"
    assert "s3cret" not in page.url + page.final_url
    error = fails(server.url("/nope").replace("//", "//alice:s3cret@"))
    assert "s3cret" not in str(error) and "alice" not in str(error)
    assert not any(b"s3cret" in path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize(("value", "seconds"), [("7", 7.0), (None, None), ("soon", None)])
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value) == seconds


def test_retry_after_as_an_http_date() -> None:
    assert retry_after_seconds("Wed, 15 May 2024 08:00:30 GMT", now=1715760000.0) == 30.0
