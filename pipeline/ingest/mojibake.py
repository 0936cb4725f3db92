"""Find spans of text garbled by a wrong codec and replace them with a visible marker.

We never guess the lost text: the marker tells the model (and the reader) that something was
there. Evidence of garbling, in order of strength:
- U+FFFD replacement characters;
- a "?" that swallowed a byte, followed by a rare character or by the tail of a broken pinyin
  annotation (因?yàn)楸幌...);
- runs of rare Han characters, typical of UTF-8 read as GBK (鍥犱负琚...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.ingest.decode import common_han
from pipeline.text import is_han

MOJIBAKE_MARKER = "[garbled]"

TONE_MARKED_VOWELS = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"
_TONED = TONE_MARKED_VOWELS
# The tail of a pinyin annotation whose opening parenthesis was eaten: "yàn)".
_BROKEN_PINYIN = re.compile(rf"[a-zü{_TONED}]*[{_TONED}][a-zü{_TONED}]*[)）]")
# Debris ASCII that a wrong codec leaves between rare characters.
_DEBRIS = set("?@_`^~\\|")
# Intact-looking characters allowed inside a garbled span when more garbling follows (a wrong
# codec also yields some common characters); punctuation and spaces end a span.
_MAX_GAP = 4
_SPAN_BREAKERS = set('。！？，；：、“”「」『』,.;:!"\n \t')
# Rare characters needed, with no other evidence, to call a run garbled (觊觎 is two, and real).
_MIN_RARE_RUN = 3


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def _is_rare(char: str) -> bool:
    return is_han(char) and char not in common_han()


def _garbage_at(text: str, i: int) -> int:
    """Length of garbage starting at i (0 if the character there looks intact)."""
    char = text[i]
    if char == "\ufffd" or _is_rare(char):
        return 1
    if char in _DEBRIS or (char.isascii() and char.isalpha() and _between_han(text, i)):
        return 1
    if i > 0 and (text[i - 1] in "(（" or text[i - 1].isalpha() and text[i - 1].isascii()):
        return 0  # an intact annotation (jì), or the middle of a word
    match = _BROKEN_PINYIN.match(text, i)
    return match.end() - i if match else 0


def _between_han(text: str, i: int) -> bool:
    """A lone ASCII letter wedged between Han characters (痹O設) is debris, not a word."""
    before = text[i - 1] if i > 0 else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    return bool(before) and bool(after) and is_han(before) and (is_han(after) or after in "(（")


def _starts_span(text: str, i: int) -> bool:
    char = text[i]
    if char == "\ufffd":
        return True
    if char == "?" and i + 1 < len(text):
        nxt = i + 1
        return _is_rare(text[nxt]) or bool(_BROKEN_PINYIN.match(text, nxt))
    return False


def _next_garbage(text: str, i: int) -> int | None:
    """Position of the next garbage within a short gap from i, not crossing punctuation or space."""
    for j in range(i, min(len(text), i + _MAX_GAP + 1)):
        if text[j] in _SPAN_BREAKERS:
            return None
        if _garbage_at(text, j):
            return j
    return None


def _extend(text: str, start: int) -> int:
    """End of the garbled span starting at `start`: garbage, with short intact-looking gaps inside."""
    end = start + max(_garbage_at(text, start), 1)
    while (j := _next_garbage(text, end)) is not None:
        end = j + _garbage_at(text, j)
    return end


def _starts_rare_run(text: str, start: int) -> bool:
    """A run of rare characters (common ones allowed singly between them) begins at `start`."""
    i, rare = start, 0
    while i < len(text) and rare < _MIN_RARE_RUN:
        if _is_rare(text[i]):
            rare += 1
        elif not (is_han(text[i]) and i + 1 < len(text) and _is_rare(text[i + 1])):
            break
        i += 1
    return rare >= _MIN_RARE_RUN


def _seeds(text: str) -> set[str]:
    """The characters a garbled span can start with that occur in `text` (usually none)."""
    return {c for c in set(text).difference(common_han()) if c in "\ufffd?" or is_han(c)}


def find_garbled(text: str) -> list[Span]:
    """Every garbled span in `text`, in order, not overlapping."""
    seeds = _seeds(text)
    if not seeds:
        return []
    spans: list[Span] = []
    end = 0
    for i in _positions(text, seeds):  # a span only starts at a seed character
        if i < end:
            continue
        if _starts_span(text, i) or (_is_rare(text[i]) and _starts_rare_run(text, i)):
            end = _extend(text, i)
            spans.append(Span(i, end))
    return spans


def _positions(text: str, chars: set[str]) -> list[int]:
    """Where any of `chars` occurs in `text`, in order (str.find per character: C speed, few characters)."""
    found: list[int] = []
    for char in chars:
        at = text.find(char)
        while at >= 0:
            found.append(at)
            at = text.find(char, at + 1)
    return sorted(found)


def mark_garbled(text: str) -> tuple[str, int]:
    """Replace each garbled span with MOJIBAKE_MARKER; return the new text and the span count."""
    spans = find_garbled(text)
    if not spans:
        return text, 0
    out: list[str] = []
    last = 0
    for span in spans:
        out.append(text[last : span.start])
        out.append(MOJIBAKE_MARKER)
        last = span.end
    out.append(text[last:])
    return "".join(out), len(spans)
