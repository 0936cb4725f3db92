"""Junk that spans lines: "more news" lists (titles printed twice, N小時前) and read-more trailers.

Both are found on the whole page before the line-by-line rules run, because whether a line is a
teaser headline or story text depends on the lines around it.
"""

from __future__ import annotations

import re

from pipeline.ingest.chrome import is_disclaimer, squeeze
from pipeline.text import ends_sentence

_RELATIVE_TIME = (
    r"(?:\d{1,3}\s*(?:秒|分鐘|分钟|小時|小时|個小時|个小时|天|日|週|周|星期|個月|个月)前|昨天|前天|昨日|剛剛|刚刚|"
    r"\d{1,3}\s*(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?)\s+ago|yesterday|just now)"
    r"(?:\s*\d{1,2}:\d{2})?"
)
_TIME_LINE = re.compile(rf"^{_RELATIVE_TIME}$", re.IGNORECASE)
_TRAILING_TIME = re.compile(rf"\s*[|｜·•\-]?\s*{_RELATIVE_TIME}$", re.IGNORECASE)
_NUMBER_LINE = re.compile(r"^\d{1,2}[.、)）]?$")
_NUMBER_PREFIX = re.compile(r"^\d{1,2}[.、)）]?\s*")
_MIN_LIST_ITEMS = 2
_MIN_TITLE = 4
_MAX_LIST_LINE = 160
# What a relative time ends with: 前 天 日 刚 剛, a digit (昨天 14:30), ago, yesterday or now.
_TIME_ENDINGS = tuple("前天日刚剛0123456789") + ("ago", "yesterday", "now")

_READ_MORE = re.compile(
    r"(?:相关新闻|相關新聞|相关阅读|相關閱讀|延伸阅读|延伸閱讀|延伸閲讀|推荐阅读|推薦閱讀|热门推荐|熱門推薦|"
    r"猜你喜欢|猜你喜歡|你或有兴趣的文章|你或有興趣的文章|你可能感兴趣|你可能感興趣|你可能也喜欢|你可能也喜歡|"
    r"更多新闻|更多新聞|更多报道|更多報道|更多報導|更多文章|更多内容|更多內容|更多精彩|更多阅读|更多閱讀|"
    r"阅读更多|閱讀更多|閲讀更多|查看更多|看更多|相关报道|相關報道|相關報導|相关文章|相關文章|"
    r"热门新闻|熱門新聞|热门文章|熱門文章|编辑推荐|編輯推薦|今日热点|今日熱點|最新新闻|最新新聞|"
    r"related(?:\s*(?:news|articles|stories|posts|coverage))?|read\s*more|read\s*next|more\s*from|more\s*news|"
    r"more\s*stories|see\s*also|you\s*may\s*also\s*like|recommended(?:\s*for\s*you)?|most\s*read|most\s*popular)",
    re.IGNORECASE,
)
_DECORATION = "【】[]〔〕《》<>«»‹›▶►▸▷→●■◆★☆※|｜:：-—=＝_~～…·•"
_HEADER_ALONE = re.compile(
    rf"^[{re.escape(_DECORATION)}]*{_READ_MORE.pattern}[{re.escape(_DECORATION)}]*$", re.IGNORECASE
)
_HEADER_INLINE = re.compile(
    rf"^[{re.escape(_DECORATION)}\s]*{_READ_MORE.pattern}\s*[:：】\]〕》>»|｜]+\s*\S", re.IGNORECASE
)
# A teaser is a headline, or a short blurb right under one; story paragraphs come one after another.
_MAX_TEASER = 120
_MAX_HEADLINE = 60


def _title(text: str) -> tuple[str, bool]:
    """A list line without its number and relative time, and whether it had the time ("" if too long)."""
    if len(text) > _MAX_LIST_LINE:
        return "", False
    title = _NUMBER_PREFIX.sub("", text)
    timed = _TRAILING_TIME.search(title) if title.lower().endswith(_TIME_ENDINGS) else None
    if timed:
        title = title[: timed.start()]
    return title.strip(), bool(timed)


def _is_doubled(title: str) -> bool:
    """The same title twice, maybe with a few spaces between: 颱風動態最新消息 颱風動態最新消息."""
    for gap in range(4):
        half, odd = divmod(len(title) - gap, 2)
        if odd or half < _MIN_TITLE:
            continue
        if title[:half] == title[half + gap :] and (not gap or title[half : half + gap].isspace()):
            return True
    return False


def _list_item(texts: list[str], lines: list[int], k: int) -> tuple[int, bool]:
    """Parse one list item at lines[k]: [number] title title-again [time]. (next k, complete?)"""
    if _NUMBER_LINE.match(texts[lines[k]]):
        k += 1
    if k >= len(lines):
        return k, False
    title, timed = _title(texts[lines[k]])
    k += 1
    doubled = _is_doubled(title)
    if title and not doubled and k < len(lines):
        again, timed_again = _title(texts[lines[k]])
        if again == title:
            doubled, timed, k = True, timed or timed_again, k + 1
    if not timed and k < len(lines) and _TIME_LINE.match(texts[lines[k]]):
        timed, k = True, k + 1
    return k, doubled and timed


def _more_news_lists(texts: list[str], lines: list[int]) -> list[int]:
    """Lines of every run of at least two list items, each a title printed twice and its time."""
    found: list[int] = []
    k = 0
    while k < len(lines):
        items, end = 0, k
        while end < len(lines):
            following, complete = _list_item(texts, lines, end)
            if not complete:
                break
            items, end = items + 1, following
        if items >= _MIN_LIST_ITEMS:
            found += lines[k:end]
            k = end
        else:
            k += 1
    return found


def _is_header(text: str) -> bool:
    return bool(_HEADER_INLINE.match(text) or (len(text) <= _MAX_HEADLINE and _HEADER_ALONE.match(squeeze(text))))


def _is_trailer(texts: list[str]) -> bool:
    """Teasers only: short lines, at least one headline, no two finished sentences in a row."""
    if not texts or any(len(squeeze(text)) > _MAX_TEASER for text in texts):
        return False
    finished = [ends_sentence(text) for text in texts]
    return not all(finished) and not any(a and b for a, b in zip(finished, finished[1:], strict=False))


def _read_more(texts: list[str], lines: list[int]) -> list[int]:
    """Read-more headers and the teasers under them.

    Up to the next disclaimer (which may open another story), lines that are all teasers are
    the page's trailer and go; otherwise the story goes on after the header, and only the
    headlines right under it go.
    """
    found: list[int] = []
    k = 0
    while k < len(lines):
        if not _is_header(texts[lines[k]]):
            k += 1
            continue
        end = k + 1
        while end < len(lines) and not is_disclaimer(texts[lines[end]]):
            end += 1
        teasers = lines[k + 1 : end]
        if not _is_trailer([texts[i] for i in teasers]):
            teasers = []
            for i in lines[k + 1 : end]:
                text = texts[i]
                if ends_sentence(text) or len(squeeze(text)) > _MAX_HEADLINE or _is_header(text):
                    break
                teasers.append(i)
        found += [lines[k], *teasers]
        k += 1 + len(teasers)
    return found


def junk_blocks(texts: list[str]) -> set[int]:
    """Indexes of the lines (texts after inline repairs, "" for blank) that belong to a junk block."""
    lines = [i for i, text in enumerate(texts) if text]
    return set(_more_news_lists(texts, lines)) | set(_read_more(texts, lines))
