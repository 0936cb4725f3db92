"""Feeds and lists of feeds: RSS 2.0, Atom and RDF (feedparser, on bytes we fetched), OPML, URL-per-line files."""

from __future__ import annotations

import calendar
import html
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urljoin

import feedparser
import lxml.html
from lxml import etree

from pipeline.errors import InputError
from pipeline.ingest.html_meta import iso_date
from pipeline.records import DocumentMeta
from pipeline.sources.urls import canonical_url, is_web_url, strip_credentials

Kind = Literal["feed", "opml", "html", "unknown"]
# A feed's own text is used instead of fetching the link when it is at least this long (characters
# outside tags and spaces) and longer than the item's summary: then it is the article, not a teaser.
MIN_FULL_TEXT = 120
_PROLOGUE = re.compile(rb"^(?:\s|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)*", re.S | re.I)
_ROOT = re.compile(rb"<([A-Za-z][\w:.-]*)")


@dataclass(frozen=True)
class FeedItem:
    """One item of a feed: where the article is, or the article itself when the feed carries it."""

    feed_url: str
    link: str | None  # absolute http(s) link, credentials stripped
    title: str | None
    published: str | None  # ISO 8601
    published_at: datetime | None  # for `since` filtering, aware (UTC when the feed gave no zone)
    author: str | None
    guid: str | None
    full_html: str | None  # sanitised HTML of the full text, when the feed carries it

    def meta(self, site: str | None) -> DocumentMeta:
        link = self.link
        return DocumentMeta(
            title=self.title,
            url=link,
            canonical_url=canonical_url(link) if link else None,
            published=self.published,
            author=self.author,
            site=site,
        )


@dataclass(frozen=True)
class Feed:
    url: str
    title: str | None
    items: list[FeedItem]


def sniff(payload: bytes) -> Kind:
    """What a document is, from its first element: a feed (rss, feed, rdf:RDF), OPML, HTML, or unknown."""
    head = payload[:4096]
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            head = head[2:].decode(codec, errors="ignore").encode("utf-8")
    head = head.removeprefix(b"\xef\xbb\xbf")
    rest = head[_PROLOGUE.match(head).end() :]  # type: ignore[union-attr]  # the pattern matches empty
    match = _ROOT.match(rest)
    if match is None:
        return "html" if b"<html" in head.lower() else "unknown"
    root = match.group(1).lower()
    if root in (b"rss", b"feed", b"rdf:rdf", b"rdf"):
        return "feed"
    if root == b"opml":
        return "opml"
    if root in (b"html", b"head", b"body", b"meta", b"title", b"div", b"p", b"!doctype"):
        return "html"
    return "unknown"


def plain(markup: str | None) -> str:
    """Text of an HTML fragment, spaces squeezed."""
    if not markup:
        return ""
    if "<" not in markup:
        return " ".join(html.unescape(markup).split())
    try:
        text = lxml.html.fragment_fromstring(markup, create_parent="div").text_content()
    except (etree.ParserError, ValueError):
        text = re.sub(r"<[^>]+>", " ", markup)
    return " ".join(text.split())


def _chars(markup: str | None) -> int:
    return len(plain(markup).replace(" ", ""))


def _when(entry: Any) -> tuple[str | None, datetime | None]:
    for key in ("published", "updated", "created"):
        parsed = entry.get(f"{key}_parsed")
        if parsed:
            moment = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            return moment.isoformat(timespec="seconds"), moment
        raw = entry.get(key)
        if raw and (found := iso_date(raw)):  # "2024-05-15 10:32" and other forms feedparser skips
            moment = datetime.fromisoformat(found)
            return found, moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None, None


def _full_html(entry: Any) -> str | None:
    contents = [c.get("value") for c in entry.get("content", []) if isinstance(c, dict) and c.get("value")]
    full = max(contents, key=_chars, default=None)
    if full is None:
        return None
    summary = entry.get("summary")
    if _chars(full) >= MIN_FULL_TEXT and (_chars(full) > _chars(summary) or full == summary):
        return str(full)
    return None


def _author(entry: Any) -> str | None:
    detail = entry.get("author_detail") or {}
    name = detail.get("name") or entry.get("author") or entry.get("dc_creator")
    if not name:
        return None
    return " ".join(str(name).split())[:120] or None


def parse_feed(payload: bytes, source: str, *, base_url: str | None = None, content_type: str | None = None) -> Feed:
    """The items of an RSS/Atom/RDF document; InputError when it is not a readable feed. Never fetches."""
    headers = {"content-location": base_url or "", "content-type": content_type or "application/xml"}
    # A stream, not bytes: feedparser treats a bytes argument as a possible file name.
    parsed = feedparser.parse(io.BytesIO(payload), response_headers=headers, sanitize_html=True)
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        raise InputError(source, f"not a readable RSS, Atom or RDF feed{f' ({problem})' if problem else ''}")
    feed_title = plain(parsed.feed.get("title")) or None
    items = []
    for entry in parsed.entries:
        link = entry.get("link")
        if link and base_url:
            link = urljoin(base_url, link.strip())
        link = strip_credentials(link) if link and is_web_url(link) else None
        published, published_at = _when(entry)
        full = _full_html(entry)
        if full is None and link is None:  # nothing to fetch: whatever text the item has is the article
            full = next((c.get("value") for c in entry.get("content", []) if c.get("value")), None)
            full = full or entry.get("summary")
        items.append(
            FeedItem(
                feed_url=strip_credentials(base_url or source),
                link=link,
                title=plain(entry.get("title")) or None,
                published=published,
                published_at=published_at,
                author=_author(entry),
                guid=entry.get("id") or None,
                full_html=full or None,
            )
        )
    return Feed(url=strip_credentials(base_url or source), title=feed_title, items=items)


def item_document(item: FeedItem) -> bytes:
    """The full text a feed carried, as a small UTF-8 HTML page for the HTML reader."""
    title = html.escape(item.title or "")
    body = item.full_html or ""
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><article><h1>{title}</h1>\n{body}\n</article></body></html>"
    ).encode()


def parse_opml(payload: bytes, source: str) -> tuple[list[str], list[InputError]]:
    """Feed URLs of an OPML file (nested outlines included, each once), and one error per unusable entry."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=True, huge_tree=False)
    try:
        root = etree.fromstring(payload, parser=parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise InputError(source, f"not a readable OPML file ({exc})") from None
    if root is None or not isinstance(root.tag, str) or root.tag.lower() != "opml":
        raise InputError(source, "not an OPML file (no <opml> root)")
    urls: list[str] = []
    errors: list[InputError] = []
    for outline in root.iter("outline"):
        value = next((v for k, v in outline.attrib.items() if str(k).lower() == "xmlurl"), None)
        if value is None:
            continue
        url = str(value).strip()
        if not is_web_url(url):
            errors.append(InputError(f"{source}: {strip_credentials(url)[:100]}", "not an http(s) feed URL"))
        elif url not in urls:
            urls.append(url)
    if not urls and not errors:
        raise InputError(source, "OPML file lists no feeds (no outline with xmlUrl)")
    return urls, errors


def parse_url_list(text: str, source: str) -> tuple[list[str], list[InputError]]:
    """URLs of a one-per-line list; blank lines and `#` comments skipped; a bad line is one error."""
    urls: list[str] = []
    errors: list[InputError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if not is_web_url(words[0]):
            errors.append(InputError(f"{source}:{number}", "not an http(s) URL"))
        elif len(words) > 1 and not words[1].startswith("#"):
            errors.append(InputError(f"{source}:{number}", "one URL per line expected"))
        elif words[0] not in urls:
            urls.append(words[0])
    return urls, errors


def is_url_list(text: str) -> bool:
    """True when every non-blank, non-comment line is one URL (with an optional trailing comment)."""
    lines = [line.split() for line in text.splitlines()]
    entries = [words for words in lines if words and not words[0].startswith("#")]
    return bool(entries) and all(is_web_url(w[0]) and (len(w) == 1 or w[1].startswith("#")) for w in entries)
