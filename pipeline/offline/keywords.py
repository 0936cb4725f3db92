"""Offline keywords: jieba segmentation, merged names, TF-IDF ranking and a kind for each term."""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.dictionary import Dictionary
from pipeline.records import TermKind
from pipeline.text import HAN_RE as _CJK

_LATIN_WORD = r"[A-Za-z][A-Za-z0-9]*(?:[.\-+][A-Za-z0-9]+)*"
_LATIN_NAME = re.compile(rf"(?<![A-Za-z0-9]){_LATIN_WORD}(?: [A-Z][A-Za-z0-9]*(?:[.\-+][A-Za-z0-9]+)*)*")
# Acronyms every AI article repeats: true, but no help in telling articles apart.
_GENERIC_LATIN = frozenset("ai api app apps gpu gpus cpu ceo cto it pc vs ic photo to c ok usa us uk eu".split())
_KEYWORD_POS = frozenset({"n", "nr", "nrt", "nrfg", "ns", "nt", "nz", "eng", "vn", "j"})
_NAME_POS: dict[str, TermKind] = {
    "nr": "person",
    "nrt": "person",
    "nrfg": "person",
    "ns": "place",
    "nt": "organisation",
}
# Parts of speech that never start or end a merged name (particles, prepositions, pronouns...).
_FUNCTION_POS = frozenset({"c", "d", "p", "r", "u", "uj", "ul", "uz", "ud", "ug", "uv", "x", "y", "f", "q", "t"})
# Parts of speech a name can be built from (千 is m, 大 in 大模型 is a).
_NOMINAL_POS = frozenset({"j", "m", "a", "an", "b", "zg", "ng", "vn", "l", "nz"})
_KIND_CUES: tuple[tuple[TermKind, re.Pattern[str]], ...] = (
    (
        "organisation",
        re.compile(
            r"\b(?:company|corporation|corp|inc|group|bank|university|college|agency|news|newspaper|"
            r"times|journal|daily|post|party|association|institute|ministry|council|committee|"
            r"organi[sz]ation|airlines?|television|press|foundation)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "place",
        re.compile(
            r"\b(?:province|city|county|district|capital|country|state|river|mountains?|island|"
            r"valley|lake|region|prefecture|town|republic|kingdom|continent|sea|ocean)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "person",
        re.compile(r"\(\d{3,4}-\d{2,4}\)|\b(?:president|emperor|poet|writer|actor|singer)\b"),
    ),
    (
        "product",
        re.compile(r"\b(?:software|search engine|app|chatbot|operating system)\b", re.IGNORECASE),
    ),
)
# What follows a name in the text often says what it is: 微软公司, 千问模型, 千问APP.
_ORG_AFTER = ("公司", "集团", "银行", "大学", "研究院", "实验室")
_PRODUCT_AFTER = ("模型", "大模型", "APP", "App", "app", "应用", "芯片", "系统", "聊天机器人")
_SERIAL = re.compile(r"[0-9一二三四五六七八九十百]+号")
_JIEBA_LOCK = threading.Lock()


@dataclass(frozen=True)
class Token:
    word: str
    flag: str
    start: int


@dataclass(frozen=True)
class Keyword:
    """A ranked term in the analysis (Simplified) text, with how often it occurs."""

    simplified: str
    flag: str
    weight: float
    count: int


@functools.cache
def _jieba() -> tuple[Any, Any, dict[str, float], float, frozenset[str]]:
    """Import and initialise jieba once, quietly (it logs its dictionary load to stderr).

    jieba caches its prefix dictionary in the temp directory, so only the first run pays for it.
    Returns the tokenizer, the POS tokenizer, the IDF table, its median and jieba's stop words.
    """
    import jieba

    jieba.setLogLevel(logging.WARNING)
    import jieba.analyse
    import jieba.posseg

    jieba.initialize()
    tfidf = jieba.analyse.default_tfidf
    stop_words = frozenset(w.lower() for w in tfidf.stop_words)
    return jieba.dt, jieba.posseg.dt, tfidf.idf_freq, tfidf.median_idf, stop_words


def tokenize(analysis: str, dictionary: Dictionary) -> list[Token]:
    """Segment the Simplified text with jieba, keeping dictionary names and Latin names whole."""
    tokenizer, postokenizer, _, _, _ = _jieba()
    with _JIEBA_LOCK:
        for name in dictionary.proper_nouns_in(analysis):
            # Only names jieba lacks (英伟达); it already tags the ones it knows.
            if not tokenizer.FREQ.get(name):
                tokenizer.add_word(name, tag=_pos_for(dictionary, name))
        pairs = [(p.word, p.flag) for p in postokenizer.cut(analysis)]
    tokens: list[Token] = []
    offset = 0
    for word, flag in pairs:
        tokens.append(Token(word, flag, offset))
        offset += len(word)
    return merge_sticky(merge_latin(tokens, analysis))


def _pos_for(dictionary: Dictionary, name: str) -> str:
    kind = _dictionary_kind(dictionary, name)
    return {"person": "nr", "place": "ns", "organisation": "nt"}.get(kind or "", "nz")


def merge_latin(tokens: list[Token], text: str) -> list[Token]:
    """Replace the pieces jieba cut a Latin name into (GPT / - / 4) by the whole name."""
    spans = {m.start(): m.end() for m in _LATIN_NAME.finditer(text)}
    merged: list[Token] = []
    skip_until = -1
    for token in tokens:
        if token.start < skip_until:
            continue
        end = spans.get(token.start)
        if end is not None and end > token.start + len(token.word):
            merged.append(Token(text[token.start : end], "eng", token.start))
            skip_until = end
        else:
            merged.append(token)
    return merged


def merge_sticky(tokens: list[Token], max_parts: int = 4) -> list[Token]:
    """Rejoin words jieba cut apart in some places (千 / 问 where it elsewhere saw 千问) and names
    it does not know at all (通义 / 千 / 问 → 通义千问).

    An unknown name is a run of 2-4 nominal tokens that recurs, includes a lone character or a
    serial number (signs of a name cut up), whose longer parts rarely occur outside it, and
    which is not always preceded or followed by the same word (then it is part of a longer unit).
    """
    vocabulary = {t.word for t in tokens if len(t.word) > 1 and _CJK.match(t.word)}
    joins: dict[tuple[str, ...], None] = {}
    for size in range(max_parts, 1, -1):
        positions: dict[tuple[str, ...], list[int]] = {}
        for i in range(len(tokens) - size + 1):
            run = tokens[i : i + size]
            if _mergeable(run):
                positions.setdefault(tuple(t.word for t in run), []).append(i)
        for gram, starts in positions.items():
            if "".join(gram) in vocabulary or _is_unknown_name(gram, starts, tokens):
                joins[gram] = None
    if not joins:
        return tokens
    return _apply_joins(tokens, list(joins))


def _is_unknown_name(gram: tuple[str, ...], starts: list[int], tokens: Sequence[Token]) -> bool:
    n = len(starts)
    if n < 2 or not 3 <= len("".join(gram)) <= 8:
        return False
    # Signs of a cut-up name: a lone character (通义 / 千 / 问) or a serial (朱雀 / 三号).
    if all(len(part) > 1 and not _SERIAL.fullmatch(part) for part in gram):
        return False
    first = tokens[starts[0] : starts[0] + len(gram)]
    if first[0].flag == "m" or not all(_nominal(t) for t in first):
        return False  # 一 / 家 / 公司 is a count and 能 / 造出 a verb phrase, not names
    counts = Counter(t.word for t in tokens)
    if any(len(part) > 1 and n < 0.6 * counts[part] for part in gram):
        return False
    size = len(gram)
    before = {tokens[i - 1].word if i > 0 else "" for i in starts}
    after = {tokens[i + size].word if i + size < len(tokens) else "" for i in starts}
    for neighbours in (before, after):
        if len(neighbours) == 1 and _CJK.match(next(iter(neighbours))[:1] or " "):
            return False
    return True


def _apply_joins(tokens: list[Token], joins: list[tuple[str, ...]]) -> list[Token]:
    """Replace each joinable run (longest first, left to right) by one token."""
    joins.sort(key=len, reverse=True)
    merged: list[Token] = []
    i = 0
    while i < len(tokens):
        for gram in joins:
            if tuple(t.word for t in tokens[i : i + len(gram)]) == gram:
                merged.append(Token("".join(gram), "nz", tokens[i].start))
                i += len(gram)
                break
        else:
            merged.append(tokens[i])
            i += 1
    return merged


def _mergeable(run: Sequence[Token]) -> bool:
    return all(_CJK.fullmatch(ch) for t in run for ch in t.word) and not any(t.flag in _FUNCTION_POS for t in run)


def _nominal(token: Token) -> bool:
    return token.flag.startswith("n") or token.flag in _NOMINAL_POS


def rank_keywords(tokens: Sequence[Token], title: str = "") -> list[Keyword]:
    """Rank nouns, names and Latin names by TF-IDF (jieba's IDF table); title words count more."""
    _, _, idf, median_idf, stop_words = _jieba()
    counts: Counter[str] = Counter()
    flags: dict[str, Counter[str]] = {}
    for token in tokens:
        if _is_candidate(token, stop_words):
            counts[token.word] += 1
            flags.setdefault(token.word, Counter())[token.flag] += 1
    total = sum(counts.values()) or 1
    keywords = []
    for word, count in counts.items():
        weight = count / total * idf.get(word, median_idf)
        if word in title:
            weight *= 1.5
        flag = flags[word].most_common(1)[0][0]
        keywords.append(Keyword(word, flag, weight, count))
    keywords.sort(key=lambda k: (-k.weight, k.simplified))
    return keywords


def _is_candidate(token: Token, stop_words: frozenset[str]) -> bool:
    word = token.word
    if token.flag == "eng" or _LATIN_NAME.fullmatch(word):
        return _is_latin_name(word)
    if token.flag not in _KEYWORD_POS or word.lower() in stop_words:
        return False
    # A lone character is too ambiguous to gloss (美: beautiful or USA?).
    return len(word) >= 2 and all(_CJK.match(ch) for ch in word)


def _is_latin_name(word: str) -> bool:
    if word.lower() in _GENERIC_LATIN or len(word) < 2:
        return False
    if word.isupper() and len(word) <= 2:
        return False
    return any(ch.isupper() or ch.isdigit() for ch in word) or bool(re.search(r"[.\-+]", word))


def _dictionary_kind(dictionary: Dictionary, term: str) -> TermKind | None:
    found = dictionary.best(term, prefer_noun=True)
    if found is None or not found[0].is_proper:
        return None
    for kind, cue in _KIND_CUES:
        if cue.search(found[1]):
            return kind
    return None


def _context_kind(term: str, analysis: str) -> TermKind | None:
    """Guess a name's kind from the words right after it (微软公司, 千问APP)."""
    votes: Counter[TermKind] = Counter()
    for match in re.finditer(re.escape(term), analysis):
        after = analysis[match.end() : match.end() + 4].lstrip()
        if after.startswith(_ORG_AFTER):
            votes["organisation"] += 1
        elif after.startswith(_PRODUCT_AFTER) or analysis[max(0, match.start() - 2) : match.start()] == "旗下":
            votes["product"] += 1
    return votes.most_common(1)[0][0] if votes else None


def guess_kind(keyword: Keyword, dictionary: Dictionary, analysis: str) -> TermKind:
    """Kind from the dictionary's gloss first, then jieba's tag, then the surrounding words."""
    kind = _dictionary_kind(dictionary, keyword.simplified)
    if kind:
        return kind
    if _SERIAL.search(keyword.simplified) and keyword.flag == "nz":
        return "product"  # a numbered name: 朱雀三号, 长征十二号
    if keyword.flag in _NAME_POS:
        return _NAME_POS[keyword.flag]
    if keyword.flag in ("nz", "eng"):
        context = _context_kind(keyword.simplified, analysis)
        if context:
            return context
        if keyword.flag == "eng" and any(ch.isdigit() for ch in keyword.simplified):
            return "product"  # GPT-4, R1, H20
    return "term"
