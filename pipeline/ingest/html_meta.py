"""What a web page says about itself: title, date, author, site, canonical URL (JSON-LD, meta tags, bylines)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml.html import HtmlElement

from pipeline.records import DocumentMeta
from pipeline.sources.urls import canonical_url, host_of, strip_credentials

_ARTICLE_TYPES = {"newsarticle", "article", "reportagenewsarticle", "analysisnewsarticle", "blogposting", "report"}
# Meta names and properties that carry the publication date, most specific first.
_DATE_METAS = (
    "article:published_time",
    "og:published_time",
    "og:release_date",
    "datepublished",
    "publishdate",
    "publish_date",
    "publish-date",
    "pubdate",
    "dc.date.issued",
    "dc.date",
    "dcterms.created",
    "parsely-pub-date",
    "sailthru.date",
    "weibo: article:create_at",
    "date",
)
_AUTHOR_METAS = ("author", "article:author", "dc.creator", "parsely-author", "byl")
_SITE_METAS = ("og:site_name", "application-name", "apple-mobile-web-app-title")
# 2024年05月15日 10:32, 2024-05-15 10:32, 2024/06/02 09:15, 2024.5.15
_DATE_TEXT = re.compile(
    r"((?:19|20)\d\d)\s*[年/\-.]\s*(\d{1,2})\s*[月/\-.]\s*(\d{1,2})\s*日?"
    r"(?:\s*(?:星期.|週.|周.)?\s*(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?)?"
)
_NAME = r"[\u4e00-\u9fff·]{2,12}"
_BYLINE = re.compile(rf"(?:记者|記者|作者|撰文|文[／/｜|]|文\s*[:：])\s*[:：／/]?\s*({_NAME}(?:[、 ]{_NAME}){{0,3}})")
_AUTHOR_PREFIX = re.compile(r"^(?:本报|本報)?(?:特约)?(?:记者|記者|作者|撰文|文|By|by)\s*[:：／/｜|]?\s*")
_WECHAT_TIME = re.compile(r"""\bvar\s+ct\s*=\s*["']?(\d{9,11})""")
_WECHAT_NAME = re.compile(r"""\bvar\s+nickname\s*=\s*(?:htmlDecode\()?["']([^"'<>]{1,60})["']""")
_TITLE_SEPARATORS = re.compile(r"\s+[-–—|]{1,2}\s+|\s*[_｜|]\s*")
_SPACE = re.compile(r"\s+")


def _clean(value: Any, limit: int = 300) -> str | None:
    if not isinstance(value, str):
        return None
    text = _SPACE.sub(" ", value).strip()
    return text[:limit] if text else None


def _metas(tree: HtmlElement) -> dict[str, str]:
    """Every <meta name|property|itemprop=… content=…>, keys lower-cased; the first one of a key wins."""
    found: dict[str, str] = {}
    for meta in tree.iter("meta"):
        key = meta.get("property") or meta.get("name") or meta.get("itemprop")
        content = _clean(meta.get("content"))
        if key and content:
            found.setdefault(key.strip().lower(), content)
    return found


def _json_ld(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    """Every JSON-LD object on the page, @graph members included; malformed blocks are skipped."""
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        raw = script.text.strip().removeprefix("<!--").removesuffix("-->").strip().rstrip(";")
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        stack = [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.get("@graph", []) if isinstance(item.get("@graph"), list) else [])
                yield item


def _article_ld(tree: HtmlElement) -> dict[str, Any]:
    for item in _json_ld(tree):
        kinds = item.get("@type")
        names = kinds if isinstance(kinds, list) else [kinds]
        if any(isinstance(name, str) and name.lower() in _ARTICLE_TYPES for name in names):
            return item
    return {}


def _ld_names(value: Any) -> list[str]:
    """Names from a JSON-LD person/organisation field: a string, an object or a list of either."""
    items = value if isinstance(value, list) else [value]
    names = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        cleaned = _clean(name, 80)
        if cleaned and "://" not in cleaned:
            names.append(cleaned)
    return names


def iso_date(text: str | None) -> str | None:
    """An ISO 8601 date or date-time from what pages write, or None when it is not a plausible date."""
    if not text:
        return None
    value = text.strip()
    if value.isdigit() and 9 <= len(value) <= 11:  # a Unix timestamp
        return _plausible(datetime.fromtimestamp(int(value), UTC).isoformat(timespec="seconds"))
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        match = _DATE_TEXT.search(value)
        if not match:
            return None
        year, month, day, hour, minute, second = match.groups()
        try:
            parsed = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        except ValueError:
            return None
        if hour is None:
            return _plausible(parsed.date().isoformat())
        return _plausible(parsed.isoformat(timespec="seconds" if second else "minutes"))
    if len(value) <= 10:
        return _plausible(parsed.date().isoformat())
    return _plausible(parsed.isoformat(timespec="seconds"))


def _plausible(iso: str) -> str | None:
    year = int(iso[:4])
    return iso if 1990 <= year <= datetime.now(UTC).year + 1 else None


def _text(element: HtmlElement) -> str:
    return _SPACE.sub(" ", element.text_content()).strip()


def _h1(tree: HtmlElement, page_title: str | None) -> str | None:
    """The article's <h1>: the one that the <title> starts with, else the longest reasonable one."""
    heads = [text for h1 in tree.iter("h1") if 2 <= len(text := _text(h1)) <= 200]
    if not heads:
        return None
    if page_title:
        for head in heads:
            if page_title.startswith(head) or head in page_title:
                return head
    return max(heads, key=len)


def _split_title(title: str) -> tuple[str, str | None]:
    """'Headline_Channel_Site' -> ('Headline', 'Site'); a title without separators is all headline."""
    parts = [part for part in _TITLE_SEPARATORS.split(title) if part.strip()]
    if len(parts) < 2:
        return title, None
    return parts[0].strip(), parts[-1].strip()


def _body_text(tree: HtmlElement) -> str:
    body = tree.find("body")
    if body is None:
        return ""
    chunks = []
    for element in body.iter():
        if element.tag in ("script", "style", "noscript", "template"):
            continue
        if isinstance(element.tag, str) and element.text:
            chunks.append(element.text)
        if element.tail:
            chunks.append(element.tail)
    return _SPACE.sub(" ", " ".join(chunks))


def _near_headline(body_text: str, headline: str | None, width: int = 300) -> str:
    """The page text just after the headline: where datelines and bylines sit."""
    if headline and (at := body_text.find(headline)) >= 0:
        return body_text[at + len(headline) : at + len(headline) + width]
    return body_text[:width]


def _class_text(tree: HtmlElement, pattern: str) -> Iterator[str]:
    rule = re.compile(pattern, re.IGNORECASE)
    for element in tree.iter():
        if not isinstance(element.tag, str) or element.tag in ("script", "style", "meta", "link", "body", "html"):
            continue
        marks = (
            f"{element.get('class', '')} {element.get('id', '')} {element.get('itemprop', '')} {element.get('rel', '')}"
        )
        if rule.search(marks) and (text := _text(element)) and len(text) <= 200:
            yield text


def clean_author(raw: str | None) -> str | None:
    """'记者 王晓明' -> '王晓明'; URLs and overlong strings are not names."""
    if not raw:
        return None
    text = _AUTHOR_PREFIX.sub("", raw.strip()).strip(" ：:／/｜|")
    if not text or "://" in text or len(text) > 80:
        return None
    return text


def _date_candidates(
    tree: HtmlElement, metas: dict[str, str], ld: dict[str, Any], near: Callable[[], str], html_text: str
) -> Iterator[str | None]:
    """Where pages state their date, most explicit first; later sources are only looked at if needed."""
    yield _clean(ld.get("datePublished")) or _clean(ld.get("dateCreated"))
    yield from (metas.get(name) for name in _DATE_METAS)
    yield next((time.get("datetime") for time in tree.iter("time") if time.get("datetime")), None)
    match = _WECHAT_TIME.search(html_text)
    yield match.group(1) if match else None
    yield near()
    yield from islice(_class_text(tree, r"date|time|pub|info|source"), 5)


def _date(
    tree: HtmlElement, metas: dict[str, str], ld: dict[str, Any], near: Callable[[], str], html: str
) -> str | None:
    return next(filter(None, map(iso_date, _date_candidates(tree, metas, ld, near, html))), None)


def _author(tree: HtmlElement, metas: dict[str, str], ld: dict[str, Any], near: Callable[[], str]) -> str | None:
    if names := _ld_names(ld.get("author")):
        return ", ".join(dict.fromkeys(names))
    for name in _AUTHOR_METAS:
        if author := clean_author(metas.get(name)):
            return author
    for text in _class_text(tree, r"author|byline|zuozhe|writer"):
        if author := clean_author(text):
            return author
    if match := _BYLINE.search(near()):
        return match.group(1)
    return None


def _canonical(tree: HtmlElement, metas: dict[str, str], ld: dict[str, Any], url: str | None) -> str | None:
    declared: list[Any] = [link.get("href") for link in tree.iter("link") if "canonical" in (link.get("rel") or "")]
    main = ld.get("mainEntityOfPage")
    declared += [metas.get("og:url"), main.get("@id") if isinstance(main, dict) else main, ld.get("url")]
    for href in declared:
        if not isinstance(href, str) or not href.strip():
            continue
        absolute = urljoin(url or "", href.strip())
        parts = urlsplit(absolute)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            continue
        # A canonical that names the site's home page for an article is a template mistake.
        if parts.path in ("", "/") and url and urlsplit(url).path not in ("", "/"):
            continue
        return canonical_url(absolute)
    return canonical_url(url) if url else None


def read_meta(tree: HtmlElement, url: str | None, html_text: str = "") -> DocumentMeta:
    """Title, publication date, author, site name and canonical URL of a parsed page; unknowns are None."""
    metas = _metas(tree)
    ld = _article_ld(tree)
    title_element = tree.find(".//title")
    page_title = _clean(title_element.text_content()) if title_element is not None else None
    headline = _clean(ld.get("headline")) or metas.get("og:title") or metas.get("twitter:title")
    h1 = _h1(tree, page_title)
    title_head, title_site = _split_title(page_title) if page_title else (None, None)
    title = headline or h1 or title_head
    near = functools.cache(lambda: _near_headline(_body_text(tree), h1 or title))
    publisher = _ld_names(ld.get("publisher"))
    wechat = tree.get_element_by_id("js_name", None)
    wechat_name = _text(wechat) if wechat is not None else None
    if not wechat_name and (match := _WECHAT_NAME.search(html_text)):
        wechat_name = match.group(1)
    site = next((metas[name] for name in _SITE_METAS if metas.get(name)), None)
    site = site or (publisher[0] if publisher else None) or wechat_name
    if not site and title_site and title_site != title:
        site = title_site
    shown = strip_credentials(url) if url else None
    return DocumentMeta(
        title=title,
        url=shown,
        canonical_url=_canonical(tree, metas, ld, shown),
        published=_date(tree, metas, ld, near, html_text),
        author=_author(tree, metas, ld, near),
        site=site or (host_of(shown) if shown else None),
    )
