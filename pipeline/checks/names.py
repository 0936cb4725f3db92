"""The name check: people, organisations, places and products keep the glossary's English rendering.

Aliases are open-ended ("Carrie Lam" for 林鄭月娥), so a rendering is flagged only on evidence that
it is the same entity as a glossary entry:

1. it is a romanisation of the entry's characters (via the caller's `pinyin_of`): "Lin Zhengyue'e",
   in either name order, with or without spaces, hyphens, apostrophes or tone marks;
2. it is a full name (two or more capitalised words) sharing a word with a person's glossary rendering
   ("Carrie Lam" for "Lam Cheng Yuet-ngor"), in prose that never writes that rendering — so a second
   Lam mentioned beside the glossary one is left alone;
3. it is another English rendering of the same source term known from elsewhere (run-level check).

A span that overlaps the glossary rendering, or that is itself some glossary entry's rendering, is
never flagged. Half-translated names ("Lin郑月娥") are the fragment check's.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.checks.prose import CJK_CHAR, Fields, Term, iter_fields, sentence_at, sentence_spans
from pipeline.records import CheckFlag

PinyinOf = Callable[[str], str]
NAME_KINDS = frozenset({"person", "organisation", "place", "product"})
_MIN_KEY = 4  # shorter romanisations ("Li", "Wu") are found inside too many ordinary words
_NOT_FOLDED = re.compile(r"[^a-z]+")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_SYLLABLE_BREAK = re.compile(r"[\s'’·\-]+")
_POSSESSIVE = re.compile(r"['’]s$")
_CAPITALISED = re.compile(r"[A-Z][\w'’\-]*")
_LETTER_RUN = re.compile(r"[A-Za-z]+|[^\x00-\x7f]")  # ASCII letter runs, and each non-ASCII character
_NAME_CHARS = re.compile(r"[A-Za-zÀ-ɏ\s'’\-]+")
# Capitalised words that start sentences or titles, never part of a personal name.
_NOT_NAMES = frozenset(
    """a an the in on at of for to by from with after before since during when while as if but and or so yet
    then also however meanwhile moreover still today yesterday tomorrow last next this that these those its his
    her their our my your he she they we it according former late new chief executive president premier
    chairman chairwoman secretary minister mr mrs ms miss dr prof sir madam lady lord vice deputy general
    governor mayor ceo cfo cto founder director judge justice senator officer spokesman spokeswoman
    spokesperson leader hong kong china chinese beijing taiwan us u.s. uk january february march april may june
    july august september october november december monday tuesday wednesday thursday friday saturday sunday
    ai under over despite although because""".split()
)


@dataclass(frozen=True)
class NameHit:
    start: int
    end: int
    text: str


def check_names(
    fields: Fields,
    terms: Sequence[Term],
    *,
    pinyin_of: PinyinOf | None = None,
    variants: Mapping[str, Sequence[str]] | None = None,
    used_elsewhere: Mapping[str, Sequence[str]] | None = None,
) -> list[CheckFlag]:
    """Flag prose renderings of glossary names that differ from the glossary's English.

    `variants` maps a term's source to other English renderings seen in the run; `used_elsewhere`
    maps it to the ids of articles that do use the glossary rendering (for the message).
    """
    return NameCheck(terms, pinyin_of).check(fields, variants, used_elsewhere)


class NameCheck:
    """The name check for one set of terms, prepared once to be run over many articles' prose."""

    def __init__(self, terms: Sequence[Term], pinyin_of: PinyinOf | None = None) -> None:
        named = [t for t in terms if t.kind in NAME_KINDS and t.target and not CJK_CHAR.search(t.target)]
        self.named = [(term, romanisation_keys(term, pinyin_of)) for term in named]
        self.other_targets = {t.target.casefold() for t in terms if t.target} if named else set()

    def check(
        self,
        fields: Fields,
        variants: Mapping[str, Sequence[str]] | None = None,
        used_elsewhere: Mapping[str, Sequence[str]] | None = None,
    ) -> list[CheckFlag]:
        if not self.named:
            return []
        texts = list(iter_fields(fields))
        all_prose = "\n".join(text for _, text in texts)
        flags: list[CheckFlag] = []
        for term, keys in self.named:
            known = (variants or {}).get(term.source, [])
            person_words = _name_words(term.target) if term.kind == "person" else frozenset()
            # Cheap tests first: every kind of hit needs its letters somewhere in the prose.
            if person_words and any(word in all_prose for word in person_words):
                share = not _find_words(all_prose, term.target)
            else:
                share = False
            if not (share or known or keys):
                continue
            for field, text in texts:
                hits = _romanised(text, keys) + [h for v in known for h in _find_words(text, v)]
                if share:
                    hits += _sharing_a_word(text, person_words)
                if not hits:
                    continue
                targets = _find_words(text, term.target)
                spans = sentence_spans(text)
                for hit in _keep(hits, targets, self.other_targets - {v.casefold() for v in known}, term):
                    flags.append(_flag(field, text, spans, hit, term, (used_elsewhere or {}).get(term.source, [])))
        return flags


def romanisation_keys(term: Term, pinyin_of: PinyinOf | None) -> list[str]:
    """Letter-only keys of the term's romanisations, both name orders for people."""
    if pinyin_of is None:
        return []
    try:
        return list(_cached_keys(term, pinyin_of))
    except TypeError:  # a pinyin_of that cannot be hashed: work it out every time
        return list(_keys(term, pinyin_of))


@functools.lru_cache(maxsize=4096)
def _cached_keys(term: Term, pinyin_of: PinyinOf) -> tuple[str, ...]:
    # A run checks each glossary name against every article: its readings are looked up once.
    return _keys(term, pinyin_of)


def _keys(term: Term, pinyin_of: PinyinOf) -> tuple[str, ...]:
    keys: list[str] = []
    for form in sorted(term.forms):
        if not CJK_CHAR.search(form) or _ASCII_LETTER.search(form):
            continue
        try:
            syllables = [_fold(s) for s in _SYLLABLE_BREAK.split(pinyin_of(form)) if _fold(s)]
        except Exception:  # the caller's dictionary failing must not stop the check
            continue
        orders = [syllables]
        if term.kind == "person" and 2 <= len(syllables) <= 4:
            orders += [syllables[cut:] + syllables[:cut] for cut in (1, 2) if cut < len(syllables)]
        for order in orders:
            key = "".join(order)
            if len(key) >= _MIN_KEY and key not in keys:
                keys.append(key)
    target_key = _fold(term.target)
    return () if target_key in keys else tuple(keys)


def _fold(text: str) -> str:
    """Lowercase ASCII letters only: "Lín Zhèng-yuè'é" -> "linzhengyuee"."""
    decomposed = text if text.isascii() else unicodedata.normalize("NFKD", text)
    return _NOT_FOLDED.sub("", decomposed.lower())


def _romanised(text: str, keys: Sequence[str]) -> list[NameHit]:
    if not keys:
        return []
    folded, offsets = _letters(text)
    hits: list[NameHit] = []
    for key in keys:
        at = folded.find(key)
        while at >= 0:  # non-overlapping, left to right
            start, end = offsets[at], offsets[at + len(key) - 1] + 1
            span = text[start:end]
            if _bounded(text, start, end) and _NAME_CHARS.fullmatch(span):
                hits.append(NameHit(start, end, span))
            at = folded.find(key, at + len(key))
    return hits


@functools.lru_cache(maxsize=256)
def _letters(text: str) -> tuple[str, tuple[int, ...]]:
    """The text's letters folded to lowercase ASCII, and where each came from."""
    letters: list[str] = []
    offsets: list[int] = []
    # ASCII letters a run at a time; any other character alone, as its compatibility decomposition.
    for match in _LETTER_RUN.finditer(text):
        start, end = match.span()
        if end - start > 1 or match.group().isascii():
            letters.append(match.group().lower())
            offsets.extend(range(start, end))
            continue
        for c in unicodedata.normalize("NFKD", match.group()).lower():
            if "a" <= c <= "z":
                letters.append(c)
                offsets.append(start)
    return "".join(letters), tuple(offsets)


def _bounded(text: str, start: int, end: int) -> bool:
    return (start == 0 or not text[start - 1].isalpha()) and (end == len(text) or not text[end].isalpha())


def _find_words(text: str, phrase: str) -> list[NameHit]:
    """Whole-word occurrences of a phrase (str.find: far faster than a regex starting with a lookbehind)."""
    hits: list[NameHit] = []
    if not phrase.strip():
        return hits
    at = text.find(phrase)
    while at >= 0:
        end = at + len(phrase)
        if not _word_char(text[at - 1 : at]) and not _word_char(text[end : end + 1]):
            hits.append(NameHit(at, end, phrase))
        at = text.find(phrase, at + 1)
    return hits


def _word_char(char: str) -> bool:
    return bool(char) and (char.isalnum() or char == "_")


@functools.lru_cache(maxsize=4096)
def _name_words(target: str) -> frozenset[str]:
    """The words of a person's rendering that may show up in another full name of the same person."""
    return frozenset(
        w for w in re.split(r"\s+", target) if len(w) >= 2 and w[0].isupper() and w.lower() not in _NOT_NAMES
    )


def _sharing_a_word(text: str, words: frozenset[str]) -> list[NameHit]:
    """Full names that share a word with the person's glossary rendering (its `_name_words`)."""
    hits: list[NameHit] = []
    if not any(word in text for word in words):
        return hits
    tokens = list(_CAPITALISED.finditer(text))
    for i, token in enumerate(tokens):
        if _base(token.group()) not in words:
            continue
        first = last = i
        while first > max(0, i - 2) and _joins(text, tokens[first - 1], tokens[first]):
            first -= 1
        while last < min(len(tokens) - 1, i + 2) and _joins(text, tokens[last], tokens[last + 1]):
            last += 1
        if first == last:
            continue
        start, end = tokens[first].start(), tokens[last].end()
        span = text[start:end]
        trimmed = _POSSESSIVE.sub("", span)
        hits.append(NameHit(start, start + len(trimmed), trimmed))
    return hits


def _base(word: str) -> str:
    return _POSSESSIVE.sub("", word)


def _joins(text: str, left: re.Match[str], right: re.Match[str]) -> bool:
    """Two capitalised words side by side, both possibly part of a personal name."""
    if text[left.end() : right.start()] != " ":
        return False
    return all(_base(w.group()).lower() not in _NOT_NAMES for w in (left, right)) and not left.group().endswith(
        ("'s", "’s")
    )


def _keep(hits: Iterable[NameHit], targets: Sequence[NameHit], other_targets: set[str], term: Term) -> list[NameHit]:
    kept: list[NameHit] = []
    for hit in sorted(hits, key=lambda h: h.start):
        if any(hit.start < t.end and t.start < hit.end for t in targets):
            continue  # part of the glossary rendering itself
        folded = hit.text.casefold()
        if folded in other_targets or folded in term.target.casefold() or _fold(hit.text) == _fold(term.target):
            continue
        if any(hit.start < k.end and k.start < hit.end for k in kept):
            continue
        kept.append(hit)
    return kept


def _flag(
    field: str, text: str, spans: Sequence[tuple[int, int]], hit: NameHit, term: Term, elsewhere: Sequence[str]
) -> CheckFlag:
    where = f" used in {', '.join(elsewhere)}" if elsewhere else " in the glossary"
    return CheckFlag(
        kind="name",
        field=field,
        text=hit.text,
        sentence=sentence_at(text, spans, hit.start),
        message=f'"{hit.text}" renders {term.source} differently from "{term.target}"{where}',
        suggestions=(term.target,),
    )
