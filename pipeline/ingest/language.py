"""Language and script detection, and the OpenCC Simplified form used to match terms across scripts."""

from __future__ import annotations

import operator

from pipeline.ingest.conversion import convert
from pipeline.text import HAN_RE, HANGUL_RE, KANA_RE, LATIN_WORD_RE

__all__ = ["convert", "detect_language", "detect_script", "simplify_config", "to_simplified"]

_ENGLISH_WORDS = frozenset("the and of to in is that for on with as was by are it from at this be".split())
# Kana in a Chinese page (a quoted Japanese name) is rare; this share of the CJK letters is Japanese.
_KANA_SHARE = 0.05
# A script is "mixed" when the minority script holds this share of the distinctive characters
# (Traditional pages keep a few forms OpenCC calls Simplified, such as 户 and 台, so not less).
_MIXED_SHARE = 0.05
_MIN_MIXED_CHARS = 10
# Regional Traditional forms that tell Hong Kong from Taiwan usage (説/說, 衞/衛, 綫/線 …).
_HONG_KONG_FORMS = set("説衞啓綫麪僞峯羣裏")
_TAIWAN_FORMS = set("說衛啟線麵偽峰群裡")


def detect_language(text: str) -> str:
    """ISO 639-1 code: zh, ja, ko, en, or und when the text gives no clear signal."""
    han = len(HAN_RE.findall(text))
    kana = len(KANA_RE.findall(text))
    hangul = len(HANGUL_RE.findall(text))
    words = LATIN_WORD_RE.findall(text)
    cjk = han + kana + hangul
    if kana and kana >= _KANA_SHARE * (han + kana):
        return "ja"
    if hangul and hangul >= han:
        return "ko"
    latin_letters = sum(len(w) for w in words)
    if cjk and cjk * 2 >= latin_letters / 4:  # a CJK character carries about as much as a word
        return "zh" if han else "und"
    english = sum(1 for w in words if w.lower() in _ENGLISH_WORDS)
    return "en" if words and english >= max(2, len(words) * 0.05) else "und"


def detect_script(text: str, t2s: str | None = None) -> str:
    """For Chinese text: "traditional", "simplified" or "mixed", from characters OpenCC would change.

    `t2s` is the text's t2s conversion when the caller already has it.
    """
    t2s = convert(text, "t2s") if t2s is None else t2s
    traditional_only = sum(map(operator.ne, text, t2s))  # positions that differ, as zip pairs them
    if traditional_only == 0:
        return "simplified"  # whatever s2t would change, Simplified is the majority (or all there is)
    simplified_only = sum(map(operator.ne, text, convert(text, "s2t")))
    total = traditional_only + simplified_only
    if total == 0:
        return "simplified"  # nothing distinctive: the common characters are written the same way
    minority = min(traditional_only, simplified_only)
    if minority >= _MIN_MIXED_CHARS and minority >= _MIXED_SHARE * total:
        return "mixed"
    return "traditional" if traditional_only > simplified_only else "simplified"


def simplify_config(text: str) -> str:
    """The OpenCC config that reads this text's region best: hk2s, tw2s or t2s."""
    hong_kong = sum(text.count(c) for c in _HONG_KONG_FORMS)
    taiwan = sum(text.count(c) for c in _TAIWAN_FORMS)
    if hong_kong > taiwan:
        return "hk2s"
    if taiwan > hong_kong:
        return "tw2s"
    return "t2s"


def to_simplified(text: str, config: str = "t2s") -> str:
    """Simplified form of Chinese text, for matching terms written in either script."""
    return convert(text, config)
