"""Offline triage without a model: jieba keywords, CC-CEDICT renderings, an extractive summary."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.dictionary import Dictionary, load_dictionary
from pipeline.languages import profile
from pipeline.offline.keywords import Keyword, guess_kind, rank_keywords, tokenize
from pipeline.records import ArticleResult, Document, GlossaryEntry, Usage
from pipeline.text import HAN_RE, KANA_RE

OFFLINE_FLAG = "offline"
MAX_KEY_POINTS = 5
MAX_TITLE_CHARS = 200

_CJK = HAN_RE
_KANA = KANA_RE
# Sentence ends: CJK and Latin terminators, with any closing quotes or brackets that follow.
_CLOSERS = "”’」』）)】》\"'"
_SENTENCE_END = re.compile(rf"[。！？!?]+[{_CLOSERS}]*|\.[{_CLOSERS}]*(?=\s|$)")
_SPACE = " \t\r\u3000\u00a0"
_CJK_STOPS = "。！？”’」』）】》"


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    text: str  # as written
    analysis: str  # the same span of the Simplified analysis text


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
    if profile(language).unspaced:
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
    if profile(language).unspaced:
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
    if profile(doc.language).segmenter:
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
