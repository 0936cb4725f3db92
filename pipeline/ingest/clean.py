"""Strip web junk from an article's lines, keeping every sentence of the story.

Three passes: inline repairs inside each line (control sequences, mojibake, pinyin annotations,
image placeholders, doubled punctuation; pipeline.ingest.inline), junk blocks found on the whole
page (more-news lists, read-more trailers; pipeline.ingest.blocks), then a verdict per line
(navigation, share prompts, disclaimers, spam, captions, bylines, repeats; pipeline.ingest.chrome).
Every removal is counted by kind.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

from pipeline.ingest.blocks import junk_blocks
from pipeline.ingest.chrome import BYLINE_PREFIX, HEADING, is_prose, squeeze, verdict
from pipeline.ingest.inline import fix_inline
from pipeline.text import HAN_RE, has_sentence_end

__all__ = ["Line", "clean_lines", "html_to_text", "looks_like_html", "unescape_entities"]

_MAX_BYLINE_CHARS = 12
_SHORT_NAME = re.compile(rf"{HAN_RE.pattern}{{2,{_MAX_BYLINE_CHARS}}}")


@dataclass
class Line:
    text: str
    counts: Counter[str] = field(default_factory=Counter)
    kind: str = "text"  # "text", "blank", "boundary" (a disclaimer: may separate two stories)
    repeats: int = 0  # copies of this line dropped right after it


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page, one block per line, without scripts, styles or page chrome."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


class _TextExtractor(HTMLParser):
    _SKIP = {"script", "style", "nav", "header", "footer", "aside", "noscript", "form", "svg", "button"}
    _BLOCK = {
        "p",
        "div",
        "br",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "li",
        "tr",
        "section",
        "article",
        "blockquote",
        "figcaption",
        "title",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))


def looks_like_html(text: str) -> bool:
    head = text[:2000].lower()
    return "<html" in head or "<!doctype html" in head or len(re.findall(r"</?(?:p|div|br|span)\b", head)) >= 3


def _is_short_name(text: str) -> bool:
    """A signature or byline: a few Han characters, no punctuation (毛拍手, 曲乔乔。)."""
    return _SHORT_NAME.fullmatch(text.rstrip("。")) is not None


def _repaired(raw_lines: list[str]) -> list[tuple[str, Counter[str]]]:
    """Each line after the inline repairs, with what they removed."""
    repaired: list[tuple[str, Counter[str]]] = []
    for raw in raw_lines:
        counts: Counter[str] = Counter()
        text = fix_inline(raw, counts)
        text, bylines = BYLINE_PREFIX.subn("", text)
        if bylines:
            counts["byline"] += bylines
        if not text and raw.strip() and not +counts:
            counts["empty_after_cleaning"] += 1  # emptied by whitespace or invisible characters
        repaired.append((text, counts))
    return repaired


def clean_lines(raw_lines: list[str]) -> list[Line]:
    """Apply the line rules in order; junk lines are dropped, counted on the line that follows."""
    repaired = _repaired(raw_lines)
    blocks = junk_blocks([text for text, _ in repaired])
    kept: list[Line] = []
    pending: Counter[str] = Counter()
    seen_prose = False
    title: str | None = None
    for index, (text, counts) in enumerate(repaired):
        if counts:  # most lines had nothing removed: skip Counter's addition
            pending += counts
        if not text:
            kept.append(Line("", kind="blank"))
            continue
        if index in blocks:
            pending["related"] += 1
            continue
        kind = verdict(text, seen_prose)
        if kind == "disclaimer":
            pending[kind] += 1
            kept.append(Line("", Counter(), "boundary"))
            continue
        if kind:
            pending[kind] += 1
            continue
        squeezed = squeeze(text)
        previous = _last_text(kept)
        if previous is not None and squeeze(previous.text) == squeezed:
            pending["duplicate"] += 1
            previous.repeats += 1
            continue
        if title is not None and previous is not None and previous.text == title and _is_short_name(text):
            pending["byline"] += 1  # a byline glued under the title
            continue
        prose = is_prose(text)
        if title is None and prose:
            title = text
        seen_prose = seen_prose or prose
        line = Line(text, pending)
        pending = Counter()
        kept.append(line)
    if pending:
        kept.append(Line("", pending, "blank"))
    return _drop_repeated_captions(_drop_signatures(kept))


def _last_text(lines: list[Line]) -> Line | None:
    for line in reversed(lines):
        if line.kind == "text":
            return line
        if line.kind == "boundary":
            return None
    return None


def _drop_signatures(lines: list[Line]) -> list[Line]:
    """A lone name next to a disclaimer is the author's signature (毛拍手), not story text."""
    result = list(lines)
    for index, line in enumerate(lines):
        if line.kind != "boundary":
            continue
        for step in (-1, 1):
            j = _neighbour_text(lines, index, step)
            if j is not None and _is_short_name(lines[j].text):
                result[j] = Line("", lines[j].counts + Counter(byline=1), "blank")
    return result


def _neighbour_text(lines: list[Line], index: int, step: int) -> int | None:
    j = index + step
    while 0 <= j < len(lines) and lines[j].kind == "blank":
        j += step
    return j if 0 <= j < len(lines) and lines[j].kind == "text" else None


def _drop_repeated_captions(lines: list[Line]) -> list[Line]:
    """A short unpunctuated line printed twice in the story (長征十二號甲遙一運載火箭) is a caption.

    The first copy survived the repeat rule; drop it too, unless it is the title.
    """
    result = list(lines)
    texts = [line for line in lines if line.kind == "text"]
    title = texts[0].text if texts else None
    for index, line in enumerate(lines):
        if line.kind != "text" or line.text == title or has_sentence_end(line.text) or HEADING.match(line.text):
            continue
        if line.repeats and len(line.text) <= 40 and not line.text.endswith(("。", "」", "”")):
            result[index] = Line("", line.counts + Counter(caption=1), "blank")
    return result


def unescape_entities(text: str) -> str:
    return html.unescape(text) if re.search(r"&(?:[a-z]+|#\d+);", text) else text
