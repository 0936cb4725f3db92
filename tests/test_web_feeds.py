"""Feeds, OPML and URL lists as bytes: what is read, what is refused, and that nothing is fetched or expanded."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.sources.feeds import is_url_list, item_document, parse_feed, parse_opml, parse_url_list, sniff

PAGES = Path(__file__).resolve().parent / "pages"
BASE = "http://feeds.example"


def load(name: str) -> bytes:
    return PAGES.joinpath(name).read_bytes().replace(b"http://BASE", BASE.encode())


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b'\xef\xbb\xbf<?xml version="1.0"?><rss version="2.0"></rss>', "feed"),
        (b"<!-- generator --><feed xmlns='http://www.w3.org/2005/Atom'/>", "feed"),
        (b"<rdf:RDF></rdf:RDF>", "feed"),
        (b"<?xml version='1.0'?>\n<opml version='2.0'/>", "opml"),
        (b"<!DOCTYPE html><html><body></body></html>", "html"),
        ("<rss version='2.0'></rss>".encode("utf-16"), "feed"),
        (b"https://a.example/1\n", "unknown"),
        (b"", "unknown"),
    ],
)
def test_sniff(payload: bytes, kind: str) -> None:
    assert sniff(payload) == kind


def test_rss_items_with_dates_authors_and_full_text() -> None:
    feed = parse_feed(load("rss.xml"), "rss.xml", base_url=f"{BASE}/rss.xml")
    assert feed.title == "华夏网 - 财经频道" and len(feed.items) == 4
    first, full, old, repeat = feed.items
    assert first.link == f"{BASE}/news/portal.html?utm_source=rss&utm_medium=feed" and first.author == "王晓明"
    assert first.published == "2024-05-15T02:32:00+00:00" and first.full_html is None  # a teaser: fetch the link
    assert full.full_html is not None and "货币政策执行报告" in full.full_html and "<script" not in full.full_html
    assert full.published == "2024-05-10T01:00:00+00:00"
    assert old.published_at is not None and old.published_at.month == 3
    assert repeat.published == "2024-05-15T10:40:00+00:00"  # "2024-05-15 10:40:00", not RFC 822, still read


def test_atom_content_equal_to_summary_is_full_text_and_links_resolve() -> None:
    feed = parse_feed(load("atom.xml"), "atom.xml", base_url=f"{BASE}/hk/atom.xml")
    teaser, full = feed.items
    assert teaser.link == f"{BASE}/news/hk.html" and teaser.full_html is None
    assert full.full_html is not None and full.author == "天文台記者"
    page = item_document(full).decode("utf-8")
    assert page.count("<h1>天文台：明日氣溫回升 周末有雨</h1>") == 1 and "天文台預測" in page


def test_item_without_link_carries_its_summary() -> None:
    rss = b"<rss version='2.0'><channel><item><title>x</title><description>short note</description></item></channel>"
    rss += b"</rss>"
    [item] = parse_feed(rss, "f.xml").items
    assert item.link is None and item.full_html == "short note"


def test_javascript_links_are_not_links() -> None:
    rss = b"<rss version='2.0'><channel><item><title>x</title><link>javascript:alert(1)</link></item></channel></rss>"
    [item] = parse_feed(rss, "f.xml").items
    assert item.link is None


def test_not_a_feed_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not a readable RSS, Atom or RDF feed"):
        parse_feed(b"<html><body>hello</body></html>", "page.html")


def test_bytes_that_look_like_a_path_are_parsed_not_opened(tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_text("<rss version='2.0'><channel><item><title>leak</title></item></channel></rss>")
    with pytest.raises(InputError):
        parse_feed(str(secret).encode(), "evil")


def test_opml_lists_nested_feeds_once() -> None:
    urls, errors = parse_opml(load("feeds.opml"), "feeds.opml")
    assert urls == [f"{BASE}/rss.xml", f"{BASE}/atom.xml", f"{BASE}/rdf.xml"]
    assert [e.reason for e in errors] == ["not an http(s) feed URL"]


def test_opml_entities_are_not_expanded(tmp_path: Path) -> None:
    target = tmp_path / "passwd"
    target.write_text("http://stolen.example/")
    evil = (
        f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x SYSTEM "file://{target}">]>'
        '<opml version="2.0"><body><outline xmlUrl="&x;"/><outline xmlUrl="https://ok.example/feed"/></body></opml>'
    ).encode()
    urls, _errors = parse_opml(evil, "evil.opml")
    assert urls == ["https://ok.example/feed"]


def test_opml_without_feeds_or_not_opml() -> None:
    with pytest.raises(InputError, match="lists no feeds"):
        parse_opml(b"<opml version='2.0'><body><outline text='empty'/></body></opml>", "a.opml")
    with pytest.raises(InputError, match="not an OPML file"):
        parse_opml(b"<rss/>", "b.opml")


def test_url_list_comments_blank_lines_and_bad_lines() -> None:
    text = "# header\n\nhttps://a.example/1\n  https://a.example/2   # trailing\nnot a url\n"
    text += "https://a.example/1\nhttp://x y\n"
    urls, errors = parse_url_list(text, "list.txt")
    assert urls == ["https://a.example/1", "https://a.example/2"]
    assert [(e.source, e.reason) for e in errors] == [
        ("list.txt:5", "not an http(s) URL"),
        ("list.txt:7", "one URL per line expected"),
    ]


@pytest.mark.parametrize(
    ("text", "verdict"),
    [("https://a.example\n# c\n", True), ("# only comments\n", False), ("https://a.example\nsome prose\n", False)],
)
def test_is_url_list(text: str, verdict: bool) -> None:
    assert is_url_list(text) is verdict
