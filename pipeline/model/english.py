"""Content checks on model replies beyond the schema: English, not copied source text or repetitive junk."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pipeline.text import CJK_RE

_CJK = CJK_RE  # Han, kana, Hangul: defined once in pipeline.text
# Past this share of CJK characters, a reply is still source text rather than English.
_UNTRANSLATED_SHARE = 0.2
_WORD = re.compile(r"[A-Za-z0-9']+")


def cjk_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(1 for c in letters if _CJK.match(c)) / len(letters) if letters else 0.0


def is_repetitive(text: str) -> bool:
    """A text whose words are mostly one phrase over and over (a looping small model)."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 12:
        return False
    trigrams = Counter(zip(words, words[1:], words[2:], strict=False))
    most = trigrams.most_common(1)[0][1]
    return most >= 4 and most * 3 >= len(words) / 2


def _repeated_points(points: list[Any]) -> bool:
    """One point written three times or more, making up half the list: a loop, not a summary."""
    texts = Counter(" ".join(str(p).lower().split()) for p in points)
    most = texts.most_common(1)[0][1] if texts else 0
    return most >= 3 and most * 2 >= sum(texts.values())


def language_problem(data: dict[str, Any]) -> str | None:
    """Title, summary or key points still in the source language."""
    points = data.get("key_points", [])
    prose = " ".join([str(data.get("title", "")), str(data.get("summary", "")), *map(str, points)])
    # The whole and each headline field: a Chinese title and summary above English points is untranslated too.
    fields = (prose, str(data.get("title", "")), str(data.get("summary", "")))
    if any(cjk_share(text) > _UNTRANSLATED_SHARE for text in fields):
        return "title, summary and key_points must be written in English, not copied from the article"
    return None


def repetition_problem(data: dict[str, Any]) -> str | None:
    """A title, summary or key points that are a loop rather than a summary."""
    points = data.get("key_points", [])
    if is_repetitive(str(data.get("title", ""))) or _repeated_points(points):
        return "the title or key points repeat themselves: write each point once"
    if is_repetitive(str(data.get("summary", ""))):
        return "the summary repeats the same phrase: write it once, in plain sentences"
    return None


def usable_term(item: Any) -> bool:
    """Whether a glossary item's English can stand (one that cannot is dropped, not the reply).

    Its English must be English, and a term the article already writes in Latin letters (OpenAI,
    Z.ai) keeps its name: a small model was seen glossing "OpenAI" as "GPU".
    """
    if not isinstance(item, dict):
        return True  # the schema's business
    source, target = str(item.get("source", "")), str(item.get("target", ""))
    if cjk_share(target) > _UNTRANSLATED_SHARE:
        return False
    if source.isascii() and any(c.isalpha() for c in source):
        return _squash(source) in _squash(target) or _squash(target) in _squash(source)
    return True


def _squash(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


def overview_check(data: dict[str, Any]) -> str | None:
    """The briefing's overview must be English and not a loop."""
    overview = str(data.get("overview", ""))
    if cjk_share(overview) > _UNTRANSLATED_SHARE:
        return "overview must be written in English"
    if is_repetitive(overview):
        return "the overview repeats the same phrase: write it once, in plain sentences"
    return None
