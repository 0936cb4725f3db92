"""HTML page -> main text (one paragraph per line) and metadata: charset, container, trafilatura, fallback.

The order of the charset evidence follows browsers: a BOM, then the HTTP header, then <meta charset> or
http-equiv, then our own GB18030/Big5/UTF-8 detection. A Latin-1 header is weak evidence (servers send it
by default), so a page's own <meta> overrides it.

Main text: trafilatura, tuned for Chinese pages (see `find_container`), then plain tag stripping when
trafilatura finds nothing, so no page is lost silently; the `method` field says which one spoke.
"""

from __future__ import annotations

import codecs
import copy
import logging
import re
from dataclasses import dataclass
from typing import Literal, cast

import lxml.html
import trafilatura
from lxml import etree
from lxml.html import HtmlElement
from trafilatura.settings import use_config

from pipeline.errors import InputError
from pipeline.ingest.decode import decode_bytes
from pipeline.ingest.html_meta import read_meta
from pipeline.records import DocumentMeta

log = logging.getLogger(__name__)

Method = Literal["container", "trafilatura", "fallback"]
EvidenceKind = Literal["bom", "http", "meta", "detected", "replaced"]

# WHATWG label -> the Python codec that decodes what such pages really hold (GBK ⊂ GB18030, Big5 ⊂ HKSCS).
_CHARSET_ALIASES = {
    **dict.fromkeys(
        ("gb2312", "gbk", "x-gbk", "gb_2312", "gb_2312-80", "chinese", "csgb2312", "iso-ir-58", "cp936"), "gb18030"
    ),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5", "cp950"), "big5hkscs"),
    **dict.fromkeys(
        ("iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii", "iso8859-1", "l1", "windows-1252"), "cp1252"
    ),
    **dict.fromkeys(("utf-16", "utf-16le", "utf-16be", "unicode"), "utf-8"),  # a <meta> that says UTF-16 is wrong
}
_WEAK_HTTP = {"cp1252"}
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.\-]+)""", re.I)
_XML_DECL_TEXT = re.compile(r"^\s*<\?xml[^>]*\?>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_SKIP = {"script", "style", "noscript", "template", "head", "select", "option", "button", "textarea", "iframe", "svg"}
_BLOCKS = {"p", "div", "br", "li", "tr", "section", "article", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}
_BLOCKS |= {"blockquote", "pre", "dd", "dt", "figcaption", "header", "footer", "main", "aside", "hr", "td", "th"}
_PARAGRAPHISH = {"p", "span", "a", "strong", "b", "em", "i", "font", "h1", "h2", "h3", "h4", "h5", "h6", "li", "td"}
_INLINE = {
    "span",
    "a",
    "strong",
    "b",
    "em",
    "i",
    "font",
    "u",
    "small",
    "big",
    "sub",
    "sup",
    "img",
    "br",
    "code",
    "mark",
}
# Boilerplate by tag, and by id/class words that Chinese portals and WeChat use as often as English ones:
# comments (评论/pinglun, 畅言 SOHUCS, 精选留言 discuss), related (相关新闻 xgxw, 推荐 tuijian), share, ranks.
_JUNK_TAGS = {"nav", "footer", "aside", "form", "header", "iframe", "noscript", "script", "style", "button"}
_JUNK_MARKS = re.compile(
    r"related|xgxw|xiangguan|recommend|tuijian|read-?more|more-?news|hot-?news|rank|paihang|popular|"
    r"share|fenxiang|bdshare|social|breadcrumb|crumb|topbar|top-bar|sidebar|side-?bar|side-right|side-left|"
    r"footer|menu|(?:^|[\s_-])nav|(?:^|[\s_-])ads?(?:$|[\s_-])|advert|guanggao|rich_media_tool|qr-?code|erweima",
    re.I,
)
_COMMENT_MARKS = re.compile(r"comment|cmt|pinglun|sohucs|changyan|discuss|liuyan|reply|disqus", re.I)
# Boilerplate holding at least this share of the page's prose is kept (it is probably the article);
# comment threads go unless they wrap the whole page, since they often outweigh the story.
_JUNK_KEEP_SHARE = 0.5
_COMMENT_KEEP_SHARE = 0.9
# Where the article lives on the platforms we meet most; tried before the density search.
_KNOWN_CONTAINERS = (
    "js_content",  # WeChat
    "artibody",  # Sina
    "endText",  # NetEase
    "Cnt-Main-Article-QQ",  # Tencent
    "detail",  # Xinhua
    "newsText",
)
_KNOWN_CLASSES = ("rich_media_content", "TRS_Editor", "rm_txt_con", "left_zw", "post_body", "article-content")
# The container must hold this share of the page's prose (text outside links) to be trusted.
_CONTAINER_SHARE = 0.6
_KNOWN_SHARE = 0.3
# Below this share of the container's prose, trafilatura's reading of it lost paragraphs.
_KEEP_SHARE = 0.5
# Chinese carries ~3 times the content per character of English: trafilatura's 250-character floor
# ("too short, try the fallbacks") throws out real Chinese news briefs, so it is lowered.
_CONFIG = use_config()
_CONFIG.set("DEFAULT", "MIN_EXTRACTED_SIZE", "80")
_CONFIG.set("DEFAULT", "EXTENSIVE_DATE_SEARCH", "off")


@dataclass(frozen=True)
class DecodedHtml:
    text: str
    encoding: str  # the Python codec used
    evidence: EvidenceKind


@dataclass(frozen=True)
class Page:
    """What brief reads from one HTML page."""

    text: str  # the headline on the first line, then one paragraph per line
    meta: DocumentMeta
    encoding: str
    method: Method


def codec_for(label: str | None) -> str | None:
    """The Python codec for a charset label, or None when the label is unknown."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return _CHARSET_ALIASES.get(codecs.lookup(name).name, codecs.lookup(name).name)
    except LookupError:
        return None


def declared_charset(payload: bytes) -> str | None:
    """The charset a page declares in its first 8 KiB (<meta charset>, http-equiv or an XML declaration)."""
    head = payload[:8192]
    match = _XML_DECL.match(head) or _META_CHARSET.search(head)
    return codec_for(match.group(1).decode("ascii")) if match else None


def decode_html(payload: bytes, charset: str | None = None, source: str = "-") -> DecodedHtml:
    """Decode a page: BOM, HTTP charset, declared charset, then detection; InputError when nothing fits."""
    for bom, encoding in _BOMS:
        if payload.startswith(bom):
            return DecodedHtml(payload.decode(encoding, errors="replace"), encoding, "bom")
    http = codec_for(charset)
    meta = declared_charset(payload)
    tried: list[tuple[str, EvidenceKind]] = []
    if http and not (http in _WEAK_HTTP and meta):
        tried.append((http, "http"))
    if meta:
        tried.append((meta, "meta"))
    for encoding, evidence in tried:
        try:
            return DecodedHtml(payload.decode(encoding), encoding, evidence)
        except UnicodeDecodeError:
            log.info("%s: does not decode as its declared %s; detecting", source, encoding)
    try:
        detected = decode_bytes(payload, source)
        return DecodedHtml(detected.text, detected.encoding, "detected")
    except InputError:
        if not tried:
            raise
    # Declared but broken somewhere (a truncated multi-byte character): keep the page, mark the damage.
    return DecodedHtml(payload.decode(tried[0][0], errors="replace"), tried[0][0], "replaced")


def parse_html(text: str, source: str = "-") -> HtmlElement:
    """A forgiving lxml tree of a decoded page (never fetches anything it references)."""
    cleaned = _CONTROL.sub("", _XML_DECL_TEXT.sub("", text, count=1))
    if not cleaned.strip():
        raise InputError(source, "empty page")
    parser = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, recover=True)
    try:
        return lxml.html.document_fromstring(cleaned, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise InputError(source, f"not a readable HTML page ({exc})") from None


def _chars(text: str | None) -> int:
    return len("".join(text.split())) if text else 0


def prose_weights(root: HtmlElement) -> dict[HtmlElement, int]:
    """Characters of text outside links under each element (scripts, styles and forms not counted)."""
    weights: dict[HtmlElement, int] = {}
    linked: dict[HtmlElement, bool] = {}
    order = [el for el in root.iter() if isinstance(el.tag, str)]
    for element in order:
        parent = element.getparent()
        linked[element] = element.tag == "a" or (parent is not None and linked.get(parent, False))
    for element in reversed(order):
        if element.tag in _SKIP:
            weights[element] = 0
            continue
        own = 0 if linked[element] else _chars(element.text)
        for child in element:
            if isinstance(child.tag, str):
                own += weights.get(child, 0)
            if not linked[element]:
                own += _chars(child.tail)
        weights[element] = own
    return weights


def _marks(element: HtmlElement) -> str:
    return f"{element.get('id', '')} {element.get('class', '')}"


def prune_junk(body: HtmlElement) -> None:
    """Drop navigation, sidebars, related lists, share bars and comment threads, in place; never an element
    that holds most of the page's prose (a site that names its article box "sidebar-main" keeps it)."""
    weights = prose_weights(body)
    total = weights.get(body, 0) or 1
    doomed = []
    for element in body.iter():
        if not isinstance(element.tag, str) or element is body or element.tag in ("html", "body"):
            continue
        share = weights.get(element, 0) / total
        marks = _marks(element)
        if _COMMENT_MARKS.search(marks) and share < _COMMENT_KEEP_SHARE:
            doomed.append(element)
        elif (element.tag in _JUNK_TAGS or _JUNK_MARKS.search(marks)) and share < _JUNK_KEEP_SHARE:
            doomed.append(element)
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()


def find_container(body: HtmlElement) -> HtmlElement | None:
    """The element that holds the article: a known platform container, else the deepest block holding most
    of the page's prose. None when the prose is spread out (trafilatura then reads the whole page)."""
    weights = prose_weights(body)
    total = weights.get(body, 0)
    if total < 40:
        return None
    for element in body.iter():
        if not isinstance(element.tag, str):
            continue
        known = element.get("id") in _KNOWN_CONTAINERS or any(
            name in (element.get("class") or "").split() for name in _KNOWN_CLASSES
        )
        if known and weights.get(element, 0) >= _KNOWN_SHARE * total:
            return element
    node = body
    while True:
        children = [child for child in node if isinstance(child.tag, str)]
        best = max(children, key=lambda child: weights.get(child, 0), default=None)
        if best is None or best.tag in _PARAGRAPHISH or weights.get(best, 0) < _CONTAINER_SHARE * total:
            break
        node = best
    return None if node is body else node


def _normalise(container: HtmlElement) -> None:
    """Make WeChat-style markup readable: a <section>/<div> holding only inline content is a paragraph, and
    a container hidden until its script runs (style="visibility: hidden") is shown."""
    for attribute in ("style", "hidden", "aria-hidden"):
        container.attrib.pop(attribute, None)
    for element in container.iter("section", "div"):
        children = [child for child in element if isinstance(child.tag, str)]
        if all(child.tag in _INLINE for child in children) and _chars(element.text_content()):
            element.tag = "p"


def _focused(tree: HtmlElement, container: HtmlElement) -> HtmlElement:
    """A small document: the page's <head> and the container as its only content."""
    document = lxml.html.document_fromstring("<html><head></head><body><article></article></body></html>")
    head = tree.find("head")
    if head is not None:
        document.replace(document.find("head"), copy.deepcopy(head))
    article = document.find(".//article")
    piece = copy.deepcopy(container)
    piece.tail = None
    article.append(piece)
    return document


def _trafilatura(tree: HtmlElement, url: str | None, recall: bool) -> str:
    """trafilatura's reading; `recall` is for a container we chose: keep everything, skip its fallback
    extractors (readability, jusText: the latter finds no stop words in unspaced Chinese anyway)."""
    try:
        text = trafilatura.extract(
            tree,
            url=url,
            fast=recall,
            include_comments=False,
            include_tables=True,
            favor_recall=recall,
            deduplicate=False,
            with_metadata=False,
            config=_CONFIG,
        )
    except Exception as exc:  # noqa: BLE001 - a third-party parser must not take the run down
        log.info("trafilatura failed on %s: %s", url or "a page", exc)
        return ""
    return text or ""


def strip_tags(root: HtmlElement) -> str:
    """Visible text with a line break at every block element: the fallback that loses no page silently."""
    pieces: list[str] = []
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if tag in _SKIP or not tag:
                walker.skip_subtree()  # its "end" still comes, and carries the tail
                continue
            if tag in _BLOCKS:
                pieces.append("\n")
            pieces.append(element.text or "")
            continue
        if tag in _BLOCKS:
            pieces.append("\n")
        if element is not root:
            pieces.append(element.tail or "")
    return "".join(pieces)


def tidy_lines(text: str) -> str:
    """One paragraph per line, each stripped (full-width indents too), no empty lines."""
    lines = (line.strip(" \t\u3000\u00a0\u200b\ufeff") for line in text.splitlines())
    return "\n".join(re.sub(r"[ \t\u00a0]{2,}", " ", line) for line in lines if line)


def _with_title(text: str, title: str | None) -> str:
    if not title or text.startswith(title):
        return text
    first = text.split("\n", 1)[0]
    # a first line that is most of the title is the headline, written differently (a subtitle, a prefix)
    return text if first in title and 2 * len(first) >= len(title) else f"{title}\n{text}"


def extract_page(payload: bytes, *, charset: str | None = None, url: str | None = None, source: str = "-") -> Page:
    """Main text and metadata of one HTML page; InputError when it holds no text at all."""
    decoded = decode_html(payload, charset, source)
    tree = parse_html(decoded.text, source)
    meta = read_meta(tree, url, decoded.text)
    body = tree.find("body")
    if body is None:
        raise InputError(source, "HTML page without a body")
    work = copy.deepcopy(tree)
    work_body = work.find("body")
    prune_junk(work_body)
    container = find_container(work_body)
    text, method = "", cast(Method, "trafilatura")
    if container is not None:
        _normalise(container)
        text, method = _trafilatura(_focused(work, container), url, recall=True), "container"
        if _chars(text) < _KEEP_SHARE * prose_weights(container).get(container, 0):
            # trafilatura threw away most of a container we trust: its plain text is the better reading
            text, method = strip_tags(container), "fallback"
    for whole in (work, tree):  # pruned first; the page as it came if pruning took the story with it
        if not text:
            text, method = _trafilatura(whole, url, recall=False), "trafilatura"
    for root in (container if container is not None else work_body, body):
        if not tidy_lines(text):
            text, method = strip_tags(root), "fallback"
    text = tidy_lines(text)
    if not text:
        raise InputError(source, "no text found in the page")
    return Page(text=_with_title(text, meta.title), meta=meta, encoding=decoded.encoding, method=method)


def page_meta(payload: bytes, *, charset: str | None = None, url: str | None = None, source: str = "-") -> DocumentMeta:
    """Only the metadata of a page (cheaper than extract_page: no main-text extraction)."""
    decoded = decode_html(payload, charset, source)
    return read_meta(parse_html(decoded.text, source), url, decoded.text)
