"""The faithfulness guard's entry points: check an article, the overview, a run's names; word a repair."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.checks.fragments import check_fragments
from pipeline.checks.names import NAME_KINDS, NameCheck, PinyinOf, check_names
from pipeline.checks.numbers import check_numbers
from pipeline.checks.prose import Fields, GlossaryItem, build_terms, iter_fields
from pipeline.checks.source import SourceFacts, source_facts
from pipeline.records import CheckFlag

_KIND_ORDER = {"number": 0, "untranslated": 1, "name": 2}


@dataclass(frozen=True)
class ArticleProse:
    """One article's English fields and its own glossary, for the run-level name check."""

    id: str
    fields: Fields
    glossary: Sequence[GlossaryItem] = field(default_factory=tuple)


def check_article(
    source_text: str,
    fields: Fields,
    glossary: Sequence[GlossaryItem] = (),
    *,
    source_simplified: str | None = None,
    pinyin_of: PinyinOf | None = None,
) -> list[CheckFlag]:
    """Check an article's English fields (title, summary, key_points...) against its source.

    `glossary` holds (source, target, kind) tuples or GlossaryEntry records; `source_simplified`
    (the OpenCC form, same length as the source) lets a term match in either script.
    """
    facts = source_facts(source_text)
    terms = build_terms(glossary, source_text, source_simplified)
    flags = check_numbers([facts], fields)
    flags += check_fragments(fields, terms)
    flags += check_names(fields, terms, pinyin_of=pinyin_of)
    return _ordered(fields, flags)


def check_overview(
    overview: str,
    sources: Sequence[str | SourceFacts],
    glossary: Sequence[GlossaryItem] = (),
    *,
    pinyin_of: PinyinOf | None = None,
) -> list[CheckFlag]:
    """Check the run's overview against all its sources (texts, or SourceFacts computed once)."""
    facts = [s if isinstance(s, SourceFacts) else source_facts(s) for s in sources]
    fields = {"overview": overview}
    terms = build_terms(glossary)
    flags = (
        check_numbers(facts, fields) + check_fragments(fields, terms) + check_names(fields, terms, pinyin_of=pinyin_of)
    )
    return _ordered(fields, flags)


def check_run_names(
    articles: Sequence[ArticleProse], glossary: Sequence[GlossaryItem], *, pinyin_of: PinyinOf | None = None
) -> dict[str, list[CheckFlag]]:
    """Flag, per article id, names rendered otherwise than the run glossary (and than other articles)."""
    review = RunNames(glossary, pinyin_of=pinyin_of)
    for article in articles:
        review.add(article)
    result: dict[str, list[CheckFlag]] = {}
    for article in articles:
        flags = review.check(article)
        if flags:
            result[article.id] = flags
    return result


# Articles named in a flag's "used in …": a name every article uses would otherwise list them all.
_USERS_NAMED = 5


class RunNames:
    """The run-level name check in two passes: `add` every article, then `check` each.

    Every article against every run term: terms are found by form (not tried one by one), the
    readings looked up once (NameCheck), and "used in" lists made only for a flag. Memory follows
    the run's name terms, not its articles.
    """

    def __init__(self, glossary: Sequence[GlossaryItem], *, pinyin_of: PinyinOf | None = None) -> None:
        self.terms = [t for t in build_terms(glossary) if t.kind in NAME_KINDS and t.target]
        self._by_form: dict[str, list[int]] = {}
        for index, term in enumerate(self.terms):
            for form in term.forms:
                self._by_form.setdefault(form, []).append(index)
        self._variants: dict[str, list[str]] = {t.source: [] for t in self.terms}
        self._users: dict[str, list[str]] = {t.source: [] for t in self.terms}
        self._user_counts: dict[str, int] = dict.fromkeys(self._users, 0)
        self._names = NameCheck(self.terms, pinyin_of)

    def add(self, article: ArticleProse) -> None:
        """First pass: the renderings the article's own glossary uses, and the run terms its prose uses."""
        if not self.terms:
            return
        for own in build_terms(article.glossary):
            if not own.target:
                continue
            for index in sorted({i for form in own.forms for i in self._by_form.get(form, ())}):
                term = self.terms[index]
                if own.target != term.target and own.target not in self._variants[term.source]:
                    self._variants[term.source].append(own.target)
        prose = "\n".join(text for _, text in iter_fields(article.fields))
        for term in self.terms:
            if term.target in prose:
                self._user_counts[term.source] += 1
                if len(self._users[term.source]) <= _USERS_NAMED:
                    self._users[term.source].append(article.id)

    def check(self, article: ArticleProse) -> list[CheckFlag]:
        """Second pass: the article's flags, in reading order."""
        if not self.terms:
            return []
        elsewhere = _Elsewhere(self._users, self._user_counts, article.id)
        flags = self._names.check(article.fields, self._variants, elsewhere)
        return _ordered(article.fields, flags) if flags else []


class _Elsewhere(Mapping[str, list[str]]):
    """source -> ids of the other articles that use the glossary rendering, made when asked for."""

    def __init__(self, users: dict[str, list[str]], counts: dict[str, int], article_id: str) -> None:
        self.users = users
        self.counts = counts
        self.article_id = article_id

    def __getitem__(self, source: str) -> list[str]:
        others = [i for i in self.users[source] if i != self.article_id]
        named = others[:_USERS_NAMED]
        # Users are kept until one past the names shown, so any user not kept is one more other.
        more = len(others) > len(named) or self.counts[source] > len(self.users[source])
        return [*named, "others"] if more else named

    def __iter__(self) -> Iterator[str]:
        return iter(self.users)

    def __len__(self) -> int:
        return len(self.users)


def repair_instructions(flags: Sequence[CheckFlag]) -> str:
    """One corrective request naming each problem exactly; empty when there is nothing to fix."""
    lines: list[str] = []
    for flag in flags:
        line = f"{flag.field}: {_instruction(flag)}"
        if line not in lines:
            lines.append(line)
    if not lines:
        return ""
    numbered = "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
    return (
        "Your previous answer has problems. Fix exactly these, change nothing else, and return the whole answer "
        f"again in the same JSON format:\n{numbered}"
    )


def _instruction(flag: CheckFlag) -> str:
    if flag.kind == "number":
        if flag.suggestions:
            return f"{flag.message}; the source has {' or '.join(flag.suggestions)}. Use the source's figure."
        return f"{flag.message}. Use only figures the source states, or leave this one out."
    if flag.kind == "untranslated":
        if flag.suggestions:
            return f'{flag.message}; write "{flag.suggestions[0]}" instead.'
        return f"{flag.message}; write it in English."
    target = flag.suggestions[0] if flag.suggestions else "the glossary's rendering"
    return f'{flag.message}; write "{target}" instead of "{flag.text}".'


def mark_unverified(text: str, flags: Sequence[CheckFlag], *, template: str = "{text} [unverified]") -> str:
    """Mark each flagged fragment in `text` (one field's text), e.g. for the Markdown a reader sees."""
    spans: list[tuple[int, int]] = []
    for flag in flags:
        if not flag.text:
            continue
        sentence_at = text.find(flag.sentence) if flag.sentence else -1
        start = text.find(flag.text, max(sentence_at, 0))
        if start < 0:
            start = text.find(flag.text)
        end = start + len(flag.text)
        if start >= 0 and not any(s < end and start < e for s, e in spans):
            spans.append((start, end))
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + template.format(text=text[start:end]) + text[end:]
    return text


def _ordered(fields: Fields, flags: list[CheckFlag]) -> list[CheckFlag]:
    """Field order, then the order in the text, then numbers before fragments before names."""
    order = {name: i for i, (name, _) in enumerate(iter_fields(fields))}
    texts = dict(iter_fields(fields))
    return sorted(
        flags,
        key=lambda f: (
            order.get(f.field, len(order)),
            max(texts.get(f.field, "").find(f.text), 0),
            _KIND_ORDER[f.kind],
        ),
    )
