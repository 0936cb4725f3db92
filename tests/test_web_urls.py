"""Canonical URLs, credential stripping and ids that can never leave an output folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.sources.urls import MAX_ID_LENGTH, canonical_url, is_web_url, safe_id, strip_credentials, url_id


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://News.Example.COM:80/a/b.html#comments", "http://news.example.com/a/b.html"),
        ("https://x.example:443/p?b=2&a=1", "https://x.example/p?a=1&b=2"),
        ("https://x.example:8443/p", "https://x.example:8443/p"),
        ("https://x.example/p?utm_source=rss&utm_medium=x&id=7&fbclid=abc&gclid=z", "https://x.example/p?id=7"),
        ("https://user:pw@x.example/p", "https://x.example/p"),
        ("https://x.example", "https://x.example/"),
        ("https://x.example/新闻/1.html", "https://x.example/%E6%96%B0%E9%97%BB/1.html"),
        ("https://x.example/%e6%96%b0%e9%97%bb/1.html", "https://x.example/%E6%96%B0%E9%97%BB/1.html"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_canonical_url_is_idempotent_on_examples() -> None:
    for url in ("https://a.example/x?z=1&y=2#f", "http://b.example:8080/%E4%B8%AD?q=%E4%B8%AD"):
        assert canonical_url(canonical_url(url)) == canonical_url(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://alice:s3cret@feeds.example/private.xml", "https://feeds.example/private.xml"),
        ("https://token@feeds.example/x", "https://feeds.example/x"),
        ("https://feeds.example/x?q=a@b", "https://feeds.example/x?q=a@b"),
    ],
)
def test_strip_credentials(url: str, shown: str) -> None:
    assert strip_credentials(url) == shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.news.example/c/2024-05-15/doc-inaxyz1234.shtml", "news.example_doc-inaxyz1234"),
        ("https://news.example/2024/0515/9631970.shtml?utm_source=x", "news.example_9631970"),
    ],
)
def test_readable_ids(url: str, expected: str) -> None:
    assert url_id(url) == expected


def test_ids_of_generic_non_ascii_or_query_pages_carry_a_hash() -> None:
    chinese = url_id("https://x.example/新闻/台风登陆.html")
    assert re.fullmatch(r"x\.example_[0-9a-f]{10}", chinese)
    one, two = url_id("https://x.example/a/index.html"), url_id("https://x.example/b/index.html")
    assert one != two and one.startswith("x.example_a-index-")
    assert url_id("https://x.example/show.php?id=1") != url_id("https://x.example/show.php?id=2")


def test_same_page_same_id_whatever_the_tracking() -> None:
    assert url_id("https://x.example/a/1.html?utm_source=rss#top") == url_id("https://X.example:443/a/1.html")


@given(st.text(min_size=0, max_size=300))
def test_safe_id_never_escapes(text: str) -> None:
    made = safe_id(text)
    assert re.fullmatch(r"[A-Za-z0-9._-]*", made)
    assert ".." not in made and not made.startswith((".", "-")) and len(made) <= MAX_ID_LENGTH


@given(
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z0-9.-]{1,30}", fullmatch=True),
    st.lists(st.text(min_size=0, max_size=20), max_size=5),
    st.text(max_size=30),
)
def test_url_ids_stay_inside_the_output_folder(scheme: str, host: str, segments: list[str], query: str) -> None:
    url = f"{scheme}://{host}/" + "/".join(segments) + (f"?{query}" if query else "")
    made = url_id(url)
    assert made and re.fullmatch(r"[A-Za-z0-9._-]+", made) and ".." not in made
    assert len(made) <= MAX_ID_LENGTH and made not in (".", "..")
    out = Path("/tmp/out")
    assert (out / f"{made}.json").resolve().parent == out.resolve()


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("https://x.example/a", True),
        ("http://x", True),
        ("ftp://x.example/", False),
        ("x.example/a", False),
        ("", False),
    ],
)
def test_is_web_url(text: str, ok: bool) -> None:
    assert is_web_url(text) is ok
