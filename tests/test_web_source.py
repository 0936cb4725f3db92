"""web_inputs end to end against a loopback server: articles, feeds, OPML, URL lists, since/new-only, offline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.records import RawInput
from pipeline.sources.fetch import Fetcher
from pipeline.sources.seen import SeenStore
from pipeline.sources.web import WebSource, classify_target, web_inputs
from tests.webserver import Reply, WebServer

PAGES = Path(__file__).resolve().parent / "pages"


def fixture(name: str, server: WebServer) -> bytes:
    return PAGES.joinpath(name).read_bytes().replace(b"BASE", server.base_url.removeprefix("http://").encode())


@pytest.fixture
def site() -> Iterator[WebServer]:
    with WebServer() as server:
        server.page("/news/portal.html", PAGES.joinpath("portal_gbk.html").read_bytes())  # no charset anywhere
        server.page("/news/hk.html", PAGES.joinpath("hk_big5.html").read_bytes())
        server.page("/news/tw.html", PAGES.joinpath("tw_table_utf8.html").read_bytes(), charset="utf-8")
        server.page("/rss.xml", fixture("rss.xml", server), content_type="application/rss+xml")
        server.page("/atom.xml", fixture("atom.xml", server), content_type="application/atom+xml")
        server.page("/rdf.xml", fixture("rdf.xml", server), content_type="application/rdf+xml")
        server.page("/feeds.opml", fixture("feeds.opml", server), content_type="text/x-opml")
        yield server


def collect(targets: list[str], **options: Any) -> list[RawInput]:
    settings: dict[str, Any] = {
        "cache_dir": None,
        "since": None,
        "new_only": False,
        "seen": None,
        "ignore_robots": False,
        "offline": False,
    }
    settings.update(options)

    async def go() -> list[RawInput]:
        return [raw async for raw in web_inputs(targets, **settings)]

    return asyncio.run(go())


def write(tmp_path: Path, name: str, server: WebServer) -> str:
    path = tmp_path / name
    path.write_bytes(fixture(name, server))
    return str(path)


def test_article_url_yields_the_page_and_its_metadata(site: WebServer) -> None:
    [raw] = collect([site.url("/news/portal.html")])
    assert raw.error is None and raw.media_type == "text/html"
    assert raw.payload == PAGES.joinpath("portal_gbk.html").read_bytes() and raw.charset is None
    assert raw.id_hint == "finance.huaxia.example_doc-inaxyz1234"  # from the page's canonical URL
    assert (raw.meta.title, raw.meta.site, raw.meta.author) == (
        "国家统计局：4月份国民经济持续恢复 工业生产加快",
        "华夏网",
        "王晓明",
    )
    assert raw.meta.url == site.url("/news/portal.html") and raw.source == site.url("/news/portal.html")


def test_rss_feed_url_expands_to_its_items(site: WebServer) -> None:
    inputs = collect([site.url("/rss.xml")])
    by_source = {raw.source: raw for raw in inputs}
    assert len(inputs) == 3  # the fourth item repeats the first link (with tracking parameters removed)
    article = by_source[site.url("/news/portal.html?utm_source=rss&utm_medium=feed")]
    assert article.payload and article.meta.published == "2024-05-15T02:32:00+00:00"  # the feed's date wins
    full = by_source[site.url("/news/full-text.html")]
    assert full.charset == "utf-8" and full.payload and "人民银行" in full.payload.decode()
    assert b"alert(1)" not in full.payload  # feedparser sanitised the feed's HTML
    assert site.hits("/news/full-text.html") == []  # the feed carried the article: nothing fetched
    missing = by_source[site.url("/news/old.html")]
    assert missing.error is not None and missing.error.reason == "HTTP 404 Not Found"
    assert len(site.hits("/news/portal.html")) == 1


def test_since_drops_older_items_before_fetching(site: WebServer) -> None:
    async def go() -> tuple[list[RawInput], Any]:
        async with Fetcher() as fetcher:
            source = WebSource(fetcher, since=datetime(2024, 5, 1, tzinfo=UTC))
            return [raw async for raw in source.inputs([site.url("/rss.xml")])], source.stats

    inputs, stats = asyncio.run(go())
    assert [raw.error for raw in inputs] == [None, None]
    assert site.hits("/news/old.html") == [] and stats.older_than_since == 1 and stats.duplicates == 1


def test_new_only_skips_what_was_summarised(site: WebServer, tmp_path: Path) -> None:
    with SeenStore.in_cache(tmp_path) as seen:
        seen.mark(site.url("/news/portal.html#top"), "abc")
        inputs = collect([site.url("/rss.xml")], new_only=True, seen=seen)
        assert site.hits("/news/portal.html") == []
        assert len(inputs) == 2
        again = collect([site.url("/rss.xml")], new_only=False, seen=seen)  # without --new-only it is read
        assert len(again) == 3


def test_atom_relative_links_full_content_and_feed_metadata(site: WebServer) -> None:
    inputs = collect([site.url("/atom.xml")])
    assert [raw.source for raw in inputs] == [site.url("/news/hk.html"), site.url("/news/weather.html")]
    hk, weather = inputs
    assert hk.payload == PAGES.joinpath("hk_big5.html").read_bytes() and hk.meta.author == "陳大文"
    assert weather.payload and "天文台預測" in weather.payload.decode()
    assert (weather.meta.author, weather.meta.site, weather.meta.title) == (
        "天文台記者",
        "香江日報 港聞",
        "天文台：明日氣溫回升 周末有雨",
    )
    assert site.hits("/news/weather.html") == []


def test_rdf_feed(site: WebServer) -> None:
    [raw] = collect([site.url("/rdf.xml")])
    assert raw.meta.title == "台電：今夏備轉容量率可望維持百分之十" and raw.meta.author == "林美玲"


def test_opml_file_reads_each_feed_once_and_reports_bad_entries(site: WebServer, tmp_path: Path) -> None:
    inputs = collect([write(tmp_path, "feeds.opml", site)])
    errors = [raw.error for raw in inputs if raw.error]
    assert any(e.reason == "not an http(s) feed URL" for e in errors)
    assert len(site.hits("/rss.xml")) == 1 and len(site.hits("/atom.xml")) == 1 and len(site.hits("/rdf.xml")) == 1
    assert {raw.source for raw in inputs if raw.error is None} >= {site.url("/news/hk.html"), site.url("/news/tw.html")}


def test_opml_served_over_http_is_found_by_content(site: WebServer) -> None:
    inputs = collect([site.url("/feeds.opml")])
    assert len(site.hits("/rdf.xml")) == 1 and any(raw.source == site.url("/news/tw.html") for raw in inputs)


def test_url_list_keeps_order_and_isolates_failures(site: WebServer, tmp_path: Path) -> None:
    inputs = collect([write(tmp_path, "urls.txt", site)])
    sources = [raw.source for raw in inputs]
    assert sources[0] == site.url("/news/portal.html")
    assert sources[-1] == site.url("/news/hk.html")
    missing = next(raw for raw in inputs if raw.source == site.url("/news/missing.html"))
    assert missing.error is not None and "404" in missing.error.reason and missing.id_hint
    assert len(site.hits("/news/portal.html")) == 1  # listed and in the feed: read once


def test_saved_feed_file(site: WebServer, tmp_path: Path) -> None:
    path = tmp_path / "saved-feed.txt"  # the extension says nothing: the content does
    path.write_bytes(fixture("rss.xml", site))
    assert classify_target(str(path)) == "feed_file"
    assert len(collect([str(path)])) == 3


def test_a_feed_url_in_an_opml_that_answers_html_is_an_error(site: WebServer, tmp_path: Path) -> None:
    opml = tmp_path / "one.opml"
    opml.write_text(f'<opml version="2.0"><body><outline xmlUrl="{site.url("/news/hk.html")}"/></body></opml>')
    [raw] = collect([str(opml)])
    assert raw.error is not None and raw.error.reason.startswith("not an RSS, Atom or RDF feed")


def test_non_html_and_plain_text_answers(site: WebServer) -> None:
    site.page("/pic.png", b"\x89PNG\r\n\x1a\n\x00\x00", content_type="image/png")
    site.page("/note.txt", "纯文本稿件。".encode(), content_type="text/plain", charset="utf-8")
    image, note = collect([site.url("/pic.png"), site.url("/note.txt")])
    assert image.error is not None and image.error.reason == "not an HTML page (image/png)"
    assert note.media_type == "text/plain" and note.charset == "utf-8" and note.payload == "纯文本稿件。".encode()


def test_fetches_overlap_but_inputs_keep_their_order(site: WebServer) -> None:
    for n in range(4):
        site.add(f"/slow{n}.html", Reply(body=f"<p>第{n}篇</p>".encode(), delay=0.4 - 0.1 * n))
    started = time.perf_counter()
    inputs = collect([site.url(f"/slow{n}.html") for n in range(4)], ignore_robots=True)
    assert time.perf_counter() - started < 1.0  # 0.4 + 0.3 + 0.2 + 0.1 one after another would be 1.0 s
    assert [raw.source for raw in inputs] == [site.url(f"/slow{n}.html") for n in range(4)]


def test_offline_rerun_serves_the_cache_without_requests(site: WebServer, tmp_path: Path) -> None:
    online = collect([site.url("/rss.xml"), site.url("/news/tw.html")], cache_dir=tmp_path)
    sent = len(site.requests)
    offline = collect([site.url("/rss.xml"), site.url("/news/tw.html")], cache_dir=tmp_path, offline=True)
    assert len(site.requests) == sent
    assert [r.source for r in offline] == [r.source for r in online]
    for before, after in zip(online, offline, strict=True):
        if before.error is None:
            assert after.payload == before.payload and after.meta == before.meta
        else:  # a 404 was never stored: offline it is missing, and says so
            assert after.error is not None and "not in the cache" in after.error.reason


def test_what_is_not_web_input_is_one_error(tmp_path: Path) -> None:
    article = tmp_path / "article.txt"
    article.write_text("一篇文章。\n第二段。", encoding="utf-8")
    [raw] = collect([str(article)])
    assert raw.error is not None and raw.error.reason == "not a URL, feed, OPML file or URL list"


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("page.html", "<html><body><p>x</p></body></html>", "path"),
        ("article.txt", "标题\n正文。http://x.example 在文中", "path"),
        ("list.txt", "# mine\nhttps://a.example/1\n\nhttps://b.example/feed  # feed\n", "url_list"),
        ("feeds.xml", '<?xml version="1.0"?><opml version="1.0"><body/></opml>', "opml"),
        ("atom.txt", '<?xml version="1.0"?>\n<!-- c --><feed xmlns="http://www.w3.org/2005/Atom"></feed>', "feed_file"),
        ("rdf.rss", '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"></rdf:RDF>', "feed_file"),
    ],
)
def test_classify_target_by_content(tmp_path: Path, name: str, content: str, kind: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert classify_target(str(path)) == kind


def test_classify_target_urls_folders_stdin_and_missing(tmp_path: Path) -> None:
    assert classify_target("https://news.example/a.html") == "url"
    assert classify_target(str(tmp_path)) == "path"
    assert classify_target("-") == "path"
    assert classify_target(str(tmp_path / "missing.txt")) == "path"


def test_stopping_early_closes_cleanly(site: WebServer) -> None:
    async def first_only() -> RawInput:
        stream = web_inputs(
            [site.url("/news/portal.html"), site.url("/news/hk.html"), site.url("/rss.xml")],
            cache_dir=None,
            since=None,
            new_only=False,
            seen=None,
            ignore_robots=False,
            offline=False,
        )
        async for raw in stream:
            await stream.aclose()
            return raw
        raise AssertionError("nothing yielded")

    assert asyncio.run(first_only()).source == site.url("/news/portal.html")
