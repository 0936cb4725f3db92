"""Offline triage without a model: jieba keywords, CC-CEDICT renderings, an extractive summary."""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.dictionary import Dictionary, load_dictionary
from pipeline.records import ArticleResult, Document, GlossaryEntry, TermKind, Usage

OFFLINE_FLAG = "offline"
MAX_KEY_POINTS = 5
MAX_TITLE_CHARS = 200

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
# Sentence ends: CJK and Latin terminators, with any closing quotes or brackets that follow.
_CLOSERS = "”’」』）)】》\"'"
_SENTENCE_END = re.compile(rf"[。！？!?]+[{_CLOSERS}]*|\.[{_CLOSERS}]*(?=\s|$)")
_SPACE = " \t\r\u3000\u00a0"
_CJK_STOPS = "。！？”’」』）】》"
# Latin names inside Chinese text: DeepSeek, GPT-4, Z.ai, gpt-oss, "Kimi K2", "Hugging Face".
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


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    text: str  # as written
    analysis: str  # the same span of the Simplified analysis text


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


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return (start, end) spans of sentences: at CJK and Latin terminators and at line breaks."""
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        start = line.start()
        for end_match in _SENTENCE_END.finditer(line.group()):
            end = line.start() + end_match.end()
            _add_span(text, start, end, spans)
            start = end
        _add_span(text, start, line.end(), spans)
    return spans


def _add_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start] in _SPACE:
        start += 1
    while end > start and text[end - 1] in _SPACE:
        end -= 1
    if end > start:
        spans.append((start, end))


def _headline_line(text: str, language: str) -> re.Match[str] | None:
    """The first non-empty line; for CJK articles the first one in the article's script, since a
    leftover page chrome line ("Skip to Content") is no headline."""
    lines = [m for m in re.finditer(r"[^\n]+", text) if m.group().strip(_SPACE)]
    if language in ("zh", "ja"):
        for line in lines:
            if _CJK.search(line.group()) or _KANA.search(line.group()):
                return line
    return lines[0] if lines else None


def _headline_is_whole_body(text: str, line: re.Match[str] | None) -> bool:
    """A one-paragraph article (pasted prose, no headline line): its first sentence heads it."""
    return line is not None and not text[line.end() :].strip(_SPACE)


def headline(text: str, language: str = "zh") -> str:
    """Return the article's headline as written, trimmed to a title's length."""
    line = _headline_line(text, language)
    title = line.group().strip(_SPACE) if line else ""
    if line is not None and _headline_is_whole_body(text, line):
        spans = split_sentences(title)
        title = title[spans[0][0] : spans[0][1]].strip(_SPACE) if spans else title
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"


def aligned_simplified(doc: Document) -> str | None:
    """Return a Simplified text with the same offsets as `doc.text`, or None if none can be had.

    OpenCC's t2s keeps lengths in practice; when it did not, a character-by-character conversion
    restores the alignment at the cost of phrase-level choices (irrelevant for finding spans).
    """
    if len(doc.simplified) == len(doc.text):
        return doc.simplified
    try:
        from opencc import OpenCC
    except ImportError:
        return None
    convert = OpenCC("t2s").convert
    chars = [convert(ch) if _CJK.match(ch) else ch for ch in doc.text]
    if all(len(c) == 1 for c in chars):
        return "".join(chars)
    return None


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


def original_form(term: str, text: str, analysis: str | None) -> str | None:
    """Return the term as written in the article: the commonest original span of its occurrences."""
    if analysis is None:
        return term if term in text else None
    forms: Counter[str] = Counter()
    first: dict[str, int] = {}
    for match in re.finditer(re.escape(term), analysis):
        form = text[match.start() : match.end()]
        forms[form] += 1
        first.setdefault(form, match.start())
    if not forms:
        return None
    return min(forms, key=lambda f: (-forms[f], first[f]))


def build_glossary(
    keywords: Iterable[Keyword],
    doc: Document,
    analysis: str | None,
    dictionary: Dictionary,
    max_terms: int,
) -> list[tuple[GlossaryEntry, int]]:
    """Turn ranked keywords into entries written as in the article, with CC-CEDICT English only."""
    entries: list[tuple[GlossaryEntry, int]] = []
    haystack = analysis if analysis is not None else doc.simplified
    for keyword in keywords:
        if len(entries) >= max_terms:
            break
        source = original_form(keyword.simplified, doc.text, analysis)
        if source is None or source not in doc.text:
            continue  # a glossary term must occur verbatim in the article
        latin = not _CJK.search(keyword.simplified)
        entry = GlossaryEntry(
            source=source,
            source_simplified=keyword.simplified,
            # Keywords are nouns, so a noun sense beats a verb sense of the same entry.
            target=keyword.simplified if latin else dictionary.english(keyword.simplified, prefer_noun=True),
            kind=guess_kind(keyword, dictionary, haystack),
            pinyin="" if latin else dictionary.pinyin(keyword.simplified),
        )
        entries.append((entry, keyword.count))
    return entries


def sentences_of(doc: Document, analysis: str | None) -> list[Sentence]:
    """Split the article into sentences, leaving out the headline and repeated sentences."""
    line = _headline_line(doc.text, doc.language)
    body_start = line.end() if line and not _headline_is_whole_body(doc.text, line) else 0
    seen: set[str] = set()
    found = []
    for start, end in split_sentences(doc.text):
        text = doc.text[start:end]
        if start < body_start or text in seen:
            continue
        seen.add(text)
        found.append(Sentence(start, end, text, analysis[start:end] if analysis is not None else text))
    return found


def _worth_quoting(sentence: Sentence, language: str) -> bool:
    """Skip captions, subheads and image stubs: too short, or not ended like a sentence."""
    if language in ("zh", "ja"):
        long_enough = len(_CJK.findall(sentence.text)) + len(_KANA.findall(sentence.text)) >= 10
        return long_enough and bool(_SENTENCE_END.search(sentence.text[-4:]))
    return len(sentence.text.split()) >= 5


def central_sentences(sentences: Sequence[Sentence], keywords: Sequence[Keyword], max_chars: int) -> list[Sentence]:
    """Pick the sentences richest in the article's keywords, returned in article order.

    Score is the summed weight of the distinct top keywords a sentence contains, damped by its
    length so that one long sentence does not win by size alone; the lead gets a small bonus
    because news puts the point first.
    """
    top = keywords[:30]
    scored = []
    for index, sentence in enumerate(sentences):
        weight = sum(k.weight for k in top if k.simplified in sentence.analysis)
        score = weight / math.sqrt(max(len(sentence.text), 20))
        if index < 3:
            score *= 1.2
        scored.append((score, index))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return _fit([sentences[i] for score, i in scored if score > 0], max_chars)


def lead_sentences(sentences: Sequence[Sentence], max_chars: int) -> list[Sentence]:
    """The lead: sentences from the top of the article, as many as fit."""
    return _fit(sentences, max_chars, stop_at_first_misfit=True)


def _fit(candidates: Sequence[Sentence], max_chars: int, stop_at_first_misfit: bool = False) -> list[Sentence]:
    """Take candidates in order of preference while the joined summary stays within max_chars."""
    chosen: list[Sentence] = []
    for sentence in candidates:
        if any(_near_duplicate(sentence.text, other.text) for other in chosen):
            continue  # syndicated copy often repeats a sentence with a new lead-in ("據報,")
        if len(join_sentences([*chosen, sentence])) <= max_chars:
            chosen.append(sentence)
        elif stop_at_first_misfit:
            break
    return sorted(chosen, key=lambda s: s.start)


def _near_duplicate(a: str, b: str, threshold: float = 0.7) -> bool:
    """True when most character pairs of the shorter sentence also occur in the longer one."""
    short, long = sorted((a, b), key=len)
    pairs = {short[i : i + 2] for i in range(len(short) - 1)}
    if len(pairs) < 15:  # short sentences share their endings (…입니다., …了。) by chance
        return short in long
    found = {long[i : i + 2] for i in range(len(long) - 1)}
    return len(pairs & found) / len(pairs) >= threshold


def join_sentences(sentences: Sequence[Sentence]) -> str:
    """Join sentences as the language does: nothing after a CJK full stop, one space otherwise."""
    out = ""
    for sentence in sorted(sentences, key=lambda s: s.start):
        if out and out[-1] not in _CJK_STOPS:
            out += " "
        out += sentence.text
    return out


def _summary(chosen: Sequence[Sentence], fallback: Sequence[Sentence], max_chars: int) -> str:
    if chosen:
        return join_sentences(chosen)
    if not fallback:
        return ""
    # Even the best sentence is over the cap: keep its opening, marked as cut.
    text = fallback[0].text
    return text if len(text) <= max_chars else text[: max(max_chars - 1, 0)] + "…"


def key_point(entry: GlossaryEntry, mentions: int) -> str:
    """One triage line: the term as written, its meaning (or reading) and how often it occurs."""
    times = f"{mentions} mention{'s' if mentions != 1 else ''}"
    if entry.source == entry.target:
        return f"{entry.source} ({times})"
    meaning = entry.target or (f"{entry.pinyin} (no dictionary entry)" if entry.pinyin else "no dictionary entry")
    return f"{entry.source} — {meaning} ({times})"


def summarize_offline(
    doc: Document,
    dictionary: Dictionary | None = None,
    max_summary_chars: int = 300,
    max_terms: int = 15,
) -> ArticleResult:
    """Triage one document without a model, in the same record the model path produces.

    Chinese: jieba keywords (TF-IDF) become the glossary, with CC-CEDICT English and pinyin (blank
    English when the dictionary has no entry; nothing is invented); the summary is the most
    keyword-dense sentences in article order. key_points list the top terms with their English
    (else pinyin) and mention counts: for a reader without Chinese, knowing who and what an article
    is about is more useful than more untranslated sentences. Other languages: the lead sentences,
    no glossary, and an `offline:no_segmenter:<lang>` flag.
    """
    flags = [*doc.flags, OFFLINE_FLAG]
    title = headline(doc.text, doc.language)
    glossary: list[GlossaryEntry] = []
    key_points: list[str] = []
    if doc.language == "zh":
        dictionary = dictionary or load_dictionary()
        analysis = aligned_simplified(doc)
        sentences = sentences_of(doc, analysis)
        quotable = [s for s in sentences if _worth_quoting(s, doc.language)]
        keywords = rank_keywords(
            tokenize(analysis or doc.simplified, dictionary),
            headline(analysis or doc.simplified, doc.language),
        )
        ranked = build_glossary(keywords, doc, analysis, dictionary, max_terms)
        glossary = [entry for entry, _ in ranked]
        key_points = [key_point(entry, n) for entry, n in ranked[:MAX_KEY_POINTS]]
        chosen = central_sentences(quotable, keywords, max_summary_chars)
    else:
        flags.append(f"offline:no_segmenter:{doc.language}")
        sentences = sentences_of(doc, None)
        quotable = [s for s in sentences if _worth_quoting(s, doc.language)] or sentences
        chosen = lead_sentences(quotable, max_summary_chars)
    return ArticleResult(
        id=doc.id,
        source=doc.source,
        mode="offline",
        language=doc.language,
        script=doc.script,
        title=title,
        summary=_summary(chosen, quotable, max_summary_chars),
        key_points=key_points,
        glossary=glossary,
        flags=flags,
        model=None,
        prompt=None,
        usage=Usage(),
        dropped_terms=0,
    )
