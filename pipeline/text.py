"""Character classes and sentence-end rules for CJK and Latin text, defined once for the package.

The class constants are bodies of regex character classes (use them inside "[...]"), so they can
be combined: f"[{HAN}{KANA}]".
"""

from __future__ import annotations

import re

# Han ideographs: the unified block, extension A and the compatibility ideographs. The extensions
# beyond the Basic Multilingual Plane (B onwards, HAN_SUPPLEMENTARY) are kept apart: they are rare
# enough for the mojibake detector to take them for garbage; a dictionary lookup may want them.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HAN_SUPPLEMENTARY = "\U00020000-\U0003134f"
# Hiragana, katakana (with the prolonged sound mark ー), the phonetic extensions and half-width
# katakana. The katakana middle dot ・ (U+30FB) is left out: Chinese pages write foreign names with it.
KANA = "\u3040-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9f"
# Hangul syllables and jamo (conjoining, compatibility, extended).
HANGUL = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7ff"
# CJK letters in general: what a reader of Chinese, Japanese or Korean reads.
CJK = HAN + KANA + HANGUL
# CJK symbols and punctuation (ideographic space, 。「」《》【】…) and the full-width forms block
# (ＡＢＣ，！？ and half-width katakana).
CJK_PUNCTUATION = "\u3000-\u303f"
FULLWIDTH = "\uff00-\uffef"

HAN_RE = re.compile(f"[{HAN}]")
_HAN_RUN_RE = re.compile(f"[{HAN}]+")
KANA_RE = re.compile(f"[{KANA}]")
HANGUL_RE = re.compile(f"[{HANGUL}]")
CJK_RE = re.compile(f"[{CJK}]")
LATIN_WORD_RE = re.compile(r"[A-Za-z]+")

# --- sentences ----------------------------------------------------------------------------------

# Punctuation that ends a sentence in CJK text wherever it stands; Latin "!" and "?" do too.
TERMINALS = "。！？；…!?"
# Closing quotes and brackets that belong to the sentence they follow: 他說：「很好。」
CLOSERS = "”’」』》〉）)]\"'"
# A sentence ends at CJK or Latin terminal punctuation (with any closers after it). Latin "." and
# ";" only count before whitespace or the end of the text, so 3.5 and Z.ai stay whole.
_SENTENCE_END = (
    rf"(?:[{re.escape(TERMINALS)}]+[{re.escape(CLOSERS)}]*"
    rf"|\.+[{re.escape(CLOSERS)}]*(?=\s|$)|;(?=\s|$))"
)
SENTENCE_END_RE = re.compile(_SENTENCE_END)
_FINAL_SENTENCE_END = re.compile(_SENTENCE_END + "$")
# Where the chunker cuts: after a sentence end and the whitespace that follows it, or after a run
# of line breaks.
SENTENCE_BREAK_RE = re.compile(rf"{_SENTENCE_END}\s*|\n+")
# Where a sentence too long for a chunk is cut next: after clause punctuation, or at whitespace.
CLAUSE_BREAK_RE = re.compile(r"[，、,：:—]+\s*|\s+")


def is_han(char: str) -> bool:
    """HAN_RE.match(char), spelt out: several times faster, for loops over characters."""
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf" or "\uf900" <= char <= "\ufaff"


def count_han(text: str) -> int:
    return sum(map(len, _HAN_RUN_RE.findall(text)))


def has_sentence_end(text: str) -> bool:
    """Whether any sentence ends in `text` (a heading or a keyword list has none)."""
    return SENTENCE_END_RE.search(text) is not None


def ends_sentence(text: str) -> bool:
    """Whether `text` ends with a finished sentence (trailing whitespace ignored)."""
    return _FINAL_SENTENCE_END.search(text.rstrip()) is not None
