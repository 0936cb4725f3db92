"""Strip web junk from an article's lines, keeping every sentence of the story.

Two passes: inline fixes inside a line (pinyin annotations, image placeholders, doubled
punctuation, mojibake), then a verdict per line (navigation, share prompts, disclaimers, related
lists, spam, captions, bylines, repeats). Every removal is counted by kind.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

from pipeline.ingest.decode import is_han
from pipeline.ingest.mojibake import TONE_MARKED_VOWELS, mark_garbled

# --- inline -----------------------------------------------------------------------------------

_TONED = TONE_MARKED_VOWELS
_SYLLABLE = re.compile(
    r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
    r"(?:iang|iong|uang|ueng|ang|eng|ing|ong|ian|iao|uai|uan|üan|van|ai|ei|ao|ou|an|en|er|in|un|ün"
    r"|ia|ie|iu|ua|uo|ue|üe|ve|ui|a|o|e|i|u|ü|v|ng|n|m)[1-5]?"
)
# "(jìng)" right after a Han character or a mojibake marker; up to four syllables.
_ANNOTATION = re.compile(
    rf"(?<=[\u3400-\u9fff\uf900-\ufaff\]])[(（]\s*([a-zü{_TONED}1-5]+(?:\s+[a-zü{_TONED}1-5]+){{0,3}})\s*[)）]"
)
_IMAGE = re.compile(
    r"!\[[^\]\n]*\]\([^)\n]*\)|<img\b[^>]*>|[\[【](?:图片|圖片|图|圖|image|img|photo|视频|視頻)[\]】]",
    re.IGNORECASE,
)
_DOUBLED_PUNCTUATION = re.compile(r"([，,。、；;：:！!？?])\1+")
_TONE_MARK_TO_PLAIN = str.maketrans(_TONED, "".join(vowel * 4 for vowel in "aeiou") + "üüüü")


def _is_pinyin(annotation: str) -> bool:
    """Every word a pinyin syllable, and at least one tone mark or number: (OSI) and (AI) stay."""
    if not any(c in _TONED or c.isdigit() for c in annotation):
        return False
    plain = annotation.translate(_TONE_MARK_TO_PLAIN)
    return all(_SYLLABLE.fullmatch(word) for word in plain.split())


def strip_pinyin(line: str) -> tuple[str, int]:
    removed = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal removed
        if _is_pinyin(match.group(1)):
            removed += 1
            return ""
        return match.group(0)

    return _ANNOTATION.sub(replace, line), removed


def fix_inline(line: str, counts: Counter[str]) -> str:
    """Inline repairs of one line; counts what was removed."""
    line, garbled = mark_garbled(line)
    counts["mojibake"] += garbled
    line, annotations = strip_pinyin(line)
    counts["pinyin"] += annotations
    line, images = _IMAGE.subn("", line)
    counts["image"] += images
    line, doubled = _DOUBLED_PUNCTUATION.subn(r"\1", line)
    counts["doubled_punctuation"] += doubled
    line = re.sub(r"[\u200b\u200c\u200d\u2060]", "", line)  # zero-width characters
    return line.strip()


# --- whole lines ------------------------------------------------------------------------------


def _squeeze(line: str) -> str:
    """The line without spaces, for matching spaced-out chrome (你 或 有 興 趣 的 文 章)."""
    return re.sub(r"\s+", "", line)


_NAVIGATION = re.compile(
    r"^(?:skip to (?:main )?content|facebook|twitter|feature image|menu|search|home|login|sign in|"
    r"subscribe|博客文章|首页|首頁|返回首页|返回首頁|返回顶部|返回頂部|上一篇|下一篇|上一頁|下一頁|"
    r"上一页|下一页|打印|列印|字号|字號|[大中小]字?)"
    r"(?:\s*(?:skip to content|facebook|twitter|feature image|whatsapp|telegram|email))*$",
    re.IGNORECASE,
)
_BREADCRUMB = re.compile(r"^[^\s>›»]{1,12}(?:\s*[>›»]\s*[^\s>›»]{1,12}){1,6}$")
_SHARE = re.compile(
    r"分享到|分享至|分享：|分享:|一键分享|一鍵分享|下载.{0,6}app|下載.{0,6}app|打开.{0,6}app|打開.{0,6}app|"
    r"扫码|掃碼|扫描二维码|掃描二維碼|长按识别|長按識別|点击关注|點擊關注|关注我们|關注我們|"
    r"^share (?:this|on)|download (?:the|our) app|open in app|^follow us",
    re.IGNORECASE,
)
_DISCLAIMER = re.compile(
    r"特别声明|特別聲明|免责声明|免責聲明|版权所有|版權所有|版权声明|版權聲明|文责自负|文責自負|"
    r"不代表本(?:公司|站|网|網|平台|平臺)立[场場]|未经授权.{0,6}不得转载|未經授權.{0,6}不得轉載|"
    r"(?:独家|獨家)稿件|仅提供信息存储服务|僅提供信息存儲服務|^notice: the content above|"
    r"^copyright\b|all rights reserved|^©",
    re.IGNORECASE,
)
_RELATED_HEADER = re.compile(
    r"^(?:相关新闻|相關新聞|相关阅读|相關閱讀|延伸阅读|延伸閱讀|推荐阅读|推薦閱讀|热门推荐|熱門推薦|"
    r"猜你喜欢|猜你喜歡|你或有兴趣的文章|你或有興趣的文章|你可能感兴趣|你可能感興趣|更多新闻|更多新聞|"
    r"related(?: news| articles| stories)?|read more|more from)[:：]?$",
    re.IGNORECASE,
)
_CREDIT = re.compile(r"^(?:来源|來源|稿源|责任编辑|責任編輯|编辑|編輯|校对|校對|source|editor)\s*[:：]", re.IGNORECASE)
_BYLINE_PREFIX = re.compile(r"^【(?:文|记者|記者|编译|編譯|撰文)[/／:：\s][^】]{1,30}】\s*")
_CAPTION_CREDIT = re.compile(
    r"(?:\s|^)(?:IC ?Photo|視覺中國|视觉中国|社交媒體|社交媒体|Getty Images|AFP|Reuters|资料图|資料圖|"
    r"网络图片|網絡圖片|图源[^\s]*|圖源[^\s]*|新华社|新華社)\s*$",
    re.IGNORECASE,
)
_SENTENCE_PUNCTUATION = re.compile(r"[。！？；!?;.]")
_SPAM_SEPARATORS = re.compile(r"\s*[,，、|/#]\s*|\s+")
_MIN_SPAM_ITEMS = 5
_MAX_SPAM_ITEM = 10
# Before the first real line of prose, lines this short are page debris ("11", "to C").
_MIN_LINE_CHARS = 6
_MAX_BYLINE_CHARS = 12


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


def _is_prose(text: str) -> bool:
    han = sum(1 for c in text if is_han(c))
    return han >= 8 or len(re.findall(r"[A-Za-z]+", text)) >= 6


def _is_spam(text: str) -> bool:
    """A keyword line: many short items, no sentence (AI,人工智能,DeepSeek,大模型,ChatGPT)."""
    if _SENTENCE_PUNCTUATION.search(text):
        return False
    items = [item for item in _SPAM_SEPARATORS.split(text) if item]
    return len(items) >= _MIN_SPAM_ITEMS and all(len(item) <= _MAX_SPAM_ITEM for item in items)


def _is_short_name(text: str) -> bool:
    """A signature or byline: a few Han characters, no punctuation (毛拍手, 曲乔乔。)."""
    body = text.rstrip("。")
    return 2 <= len(body) <= _MAX_BYLINE_CHARS and all(is_han(c) for c in body)


def _verdict(text: str, seen_prose: bool) -> str | None:
    """The junk kind of one line, or None to keep it."""
    squeezed = _squeeze(text)
    if _NAVIGATION.match(text) or _NAVIGATION.match(squeezed):
        return "navigation"
    if _BREADCRUMB.match(text) and not _SENTENCE_PUNCTUATION.search(text):
        return "breadcrumb"
    if _SHARE.search(text) and len(squeezed) < 60:
        return "share"
    if _DISCLAIMER.search(text):
        return "disclaimer"
    if _CREDIT.match(text) and len(squeezed) < 40:
        return "credit"
    if _CAPTION_CREDIT.search(text) and len(squeezed) < 120:
        return "caption"
    if _is_spam(text):
        return "spam"
    if re.fullmatch(r"[\d\W_]+", squeezed) or (not seen_prose and len(squeezed) < _MIN_LINE_CHARS):
        return "fragment"
    return None


def clean_lines(raw_lines: list[str]) -> list[Line]:
    """Apply the line rules in order; junk lines are dropped, counted on the line that follows."""
    kept: list[Line] = []
    pending: Counter[str] = Counter()
    seen_prose = False
    in_related = False
    title: str | None = None
    for raw in raw_lines:
        counts: Counter[str] = Counter()
        text = fix_inline(raw, counts)
        text, bylines = _BYLINE_PREFIX.subn("", text)
        counts["byline"] += bylines
        pending += counts
        if not text:
            if raw.strip() and not +counts:
                pending["empty_after_cleaning"] += 1  # emptied by whitespace or invisible characters
            kept.append(Line("", kind="blank"))
            continue
        squeezed = _squeeze(text)
        if _RELATED_HEADER.match(squeezed) or _RELATED_HEADER.match(text):
            in_related = True
            pending["related"] += 1
            continue
        if in_related:
            if _is_prose(text) and _SENTENCE_PUNCTUATION.search(text) and len(squeezed) > 60:
                in_related = False  # prose again: the list is over
            else:
                pending["related"] += 1
                continue
        kind = _verdict(text, seen_prose)
        if kind == "disclaimer":
            pending[kind] += 1
            kept.append(Line("", Counter(), "boundary"))
            continue
        if kind:
            pending[kind] += 1
            continue
        previous = _last_text(kept)
        if previous is not None and _squeeze(previous.text) == squeezed:
            pending["duplicate"] += 1
            previous.repeats += 1
            continue
        if title is not None and previous is not None and previous.text == title and _is_short_name(text):
            pending["byline"] += 1  # a byline glued under the title
            continue
        prose = _is_prose(text)
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
        if line.kind != "text" or line.text == title or _SENTENCE_PUNCTUATION.search(line.text):
            continue
        if line.repeats and len(line.text) <= 40 and not line.text.endswith(("。", "」", "”")):
            result[index] = Line("", line.counts + Counter(caption=1), "blank")
    return result


def unescape_entities(text: str) -> str:
    return html.unescape(text) if re.search(r"&(?:[a-z]+|#\d+);", text) else text
