"""Repairs inside one line: terminal control sequences, mojibake, pinyin annotations, images, doubled marks."""

from __future__ import annotations

import re
from collections import Counter

from pipeline.ingest.mojibake import TONE_MARKED_VOWELS, mark_garbled
from pipeline.text import HAN

_TONED = TONE_MARKED_VOWELS
_SYLLABLE = re.compile(
    r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
    r"(?:iang|iong|uang|ueng|ang|eng|ing|ong|ian|iao|uai|uan|üan|van|ai|ei|ao|ou|an|en|er|in|un|ün"
    r"|ia|ie|iu|ua|uo|ue|üe|ve|ui|a|o|e|i|u|ü|v|ng|n|m)[1-5]?"
)
# "(jìng)" right after a Han character or a mojibake marker; up to four syllables.
_ANNOTATION = re.compile(rf"(?<=[{HAN}\]])[(（]\s*([a-zü{_TONED}1-5]+(?:\s+[a-zü{_TONED}1-5]+){{0,3}})\s*[)）]")
_IMAGE = re.compile(
    r"!\[[^\]\n]*\]\([^)\n]*\)|<img\b[^>]*>|[\[【](?:图片|圖片|图|圖|image|img|photo|视频|視頻)[\]】]",
    re.IGNORECASE,
)
_DOUBLED_PUNCTUATION = re.compile(r"([，,。、；;：:！!？?])\1+")
_TONE_MARK_TO_PLAIN = str.maketrans(_TONED, "".join(vowel * 4 for vowel in "aeiou") + "üüüü")
_ZERO_WIDTH = re.compile(r"[\u200b\u200c\u200d\u2060]")
# Terminal control sequences (text copied from a terminal, or planted to recolour or retitle the
# terminal of whoever prints our output), then any other C0 or C1 control character but tab and
# line feed. Each match counts as one removal.
_CONTROL = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erases (ESC [ 31 m)
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # OSC up to BEL or ST: titles, hyperlinks
    r"|(?:\x1b\]|\x9d)\d*;?"  # an OSC cut short: its number goes, the text after it stays
    r"|(?:\x1b[P_X^]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]"  # any other escape sequence (ESC ( B, ESC 7)
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


_ANY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # every sequence above starts with one


def strip_controls(line: str) -> tuple[str, int]:
    """`line` without terminal control sequences and control characters (tab kept), and how many."""
    return _CONTROL.subn("", line) if _ANY_CONTROL.search(line) else (line, 0)


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
    removed: dict[str, int] = {}
    line, removed["control"] = strip_controls(line)
    line, removed["mojibake"] = mark_garbled(line)
    if "(" in line or "（" in line:
        line, removed["pinyin"] = strip_pinyin(line)
    if "!" in line or "<" in line or "[" in line or "【" in line:  # where every image form starts
        line, removed["image"] = _IMAGE.subn("", line)
    line, removed["doubled_punctuation"] = _DOUBLED_PUNCTUATION.subn(r"\1", line)
    counts.update({kind: n for kind, n in removed.items() if n})
    return _ZERO_WIDTH.sub("", line).strip()
