"""Pure renderers: per-article Markdown and JSON, the glossary (TSV, JSON), the briefing."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pipeline.glossary import Conflict, RunTerm
from pipeline.jsonbytes import indented
from pipeline.output.markdown import block, cell, code, inline, link
from pipeline.records import ArticleResult, BriefingGroup, CheckFlag, GlossaryEntry

if TYPE_CHECKING:
    from pipeline.results import ResultStore

OFFLINE_BANNER = (
    "> **OFFLINE MODE — no language model was used.** This is a keyword triage: the summary "
    "is extracted sentences in the original language, and English renderings come from the "
    "CC-CEDICT dictionary (blank where it has none). Configure a model endpoint for English "
    "summaries (see README)."
)


def dump_json(data: Any) -> str:
    return indented(data) + "\n"


def glossary_table(entries: Sequence[GlossaryEntry]) -> str:
    rows = ["| Term | Simplified | Pinyin | English | Kind |", "|---|---|---|---|---|"]
    for e in entries:
        english = cell(e.target) or "—"
        if e.warnings:
            english += " ⚠"
        rows.append(
            f"| {cell(e.source)} | {cell(e.source_simplified)} | {cell(e.pinyin)} | {english} | {cell(e.kind)} |"
        )
    return "\n".join(rows)


def _source_line(result: ArticleResult) -> str:
    meta = result.meta
    where = link(meta.title or meta.site or meta.canonical_url or "", meta.canonical_url or meta.url)
    if meta.canonical_url or meta.url:
        return f"- Source: {where} · id {code(result.id)}"
    return f"- Source: {code(result.source)} · id {code(result.id)}"


def _meta_lines(result: ArticleResult) -> list[str]:
    meta = result.meta
    found = [(label, value) for label, value in (("Published", meta.published), ("Author", meta.author)) if value]
    if meta.site:
        found.append(("Site", meta.site))
    return [f"- {label}: {inline(value)}" for label, value in found]


def article_markdown(result: ArticleResult) -> str:
    """Render one article's result for a reader; every model- or page-supplied text made inert."""
    lines = [f"# {inline(result.title)}", ""]
    if result.mode == "offline":
        lines += [OFFLINE_BANNER, ""]
    script = f" ({result.script})" if result.script else ""
    made_by = (
        f"model {code(result.model)}, prompt {code(result.prompt['id'])}"
        if result.model and result.prompt
        else "offline triage"
    )
    lines += [_source_line(result), *_meta_lines(result), f"- Language: {inline(result.language)}{script} · {made_by}"]
    if result.flags:
        lines.append(f"- Flags: {code(', '.join(result.flags))}")
    summary = block(_marked(result.summary, result.checks, "summary"))
    lines += ["", "## Summary", "", summary, "", "## Key points", ""]
    points = [_marked(p, result.checks, f"key_points[{i}]") for i, p in enumerate(result.key_points)]
    lines += [f"- {inline(point)}" for point in points] or ["- (none)"]
    lines += ["", "## Glossary", ""]
    lines.append(glossary_table(result.glossary) if result.glossary else "(no terms)")
    if result.checks:
        lines += ["", "## Checks", "", _CHECKS_NOTE, ""]
        lines += [_check_line(flag) for flag in result.checks]
    return "\n".join(lines) + "\n"


UNVERIFIED = "⚠ unverified"
_CHECKS_NOTE = (
    "Statements marked ⚠ could not be verified against the source and may be wrong; "
    "each is listed with what the source says."
)


def _marked(text: str, checks: Sequence[CheckFlag], field: str) -> str:
    """The field's text with each flagged sentence followed by a warning the reader cannot miss."""
    return mark_sentences(text, [flag for flag in checks if flag.field == field])


def mark_sentences(text: str, flags: Sequence[CheckFlag]) -> str:
    """Put the unverified marker after each sentence that holds a flagged statement (once per sentence)."""
    ends: set[int] = set()
    for flag in flags:
        start = text.find(flag.sentence) if flag.sentence else -1
        if start < 0:
            start = text.find(flag.text)
            end = start + len(flag.text) if start >= 0 else len(text)
        else:
            end = start + len(flag.sentence)
        ends.add(end)
    for end in sorted(ends, reverse=True):
        text = f"{text[:end]} ({UNVERIFIED}){text[end:]}"
    return text


def _check_line(flag: CheckFlag, prefix: str = "") -> str:
    hint = f" Source: {'; '.join(flag.suggestions[:3])}." if flag.suggestions else ""
    return f"- {prefix}" + inline(f"{flag.kind} in {flag.field}: {flag.message}.{hint}")


def render_article(result: ArticleResult) -> tuple[str, str]:
    """The article's two files: (<id>.json, <id>.md)."""
    return dump_json(result.to_json()), article_markdown(result)


def _tsv_field(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())


def glossary_tsv(terms: Iterable[RunTerm]) -> str:
    """Two columns, source and English, one entry per line: DeepL's glossary import format.

    Terms without an English rendering are left out: DeepL rejects empty targets.
    """
    seen: set[str] = set()
    lines = []
    for term in terms:
        source, target = _tsv_field(term.entry.source), _tsv_field(term.entry.target)
        if source and target and source not in seen:
            seen.add(source)
            lines.append(f"{source}\t{target}")
    return "".join(f"{line}\n" for line in lines)


def glossary_json(terms: Sequence[RunTerm], conflicts: Sequence[Conflict], mode: str) -> str:
    payload = {
        "mode": mode,
        "terms": [t.to_json() for t in terms],
        "conflicts": [c.to_json() for c in conflicts],
    }
    return dump_json(payload)


def _briefing_source(result: ArticleResult) -> str:
    meta = result.meta
    url = meta.canonical_url or meta.url
    if url:
        return f"{link(meta.site or meta.title or url, url)} (id {code(result.id)})"
    return f"{code(result.source)} (id {code(result.id)})"


def briefing_markdown(
    overview: str,
    groups: Sequence[BriefingGroup],
    results: ResultStore,
    terms: Sequence[RunTerm],
    mode: str,
    failures: Sequence[tuple[str, str]] = (),
    overview_checks: Sequence[CheckFlag] = (),
    duplicates: Sequence[tuple[str, str]] = (),
) -> Iterator[str]:
    """Render the run's briefing, in pieces: overview, a section per story group, the merged glossary.

    The groups come first; every article in none of them follows on its own, in id order.

    Each article is read from the store when its section is written: a run of any size is never
    held whole, as results or as text.
    """
    lines = ["# Briefing", ""]
    if mode == "offline":
        lines += [OFFLINE_BANNER, ""]
    lines += [f"{len(results)} article(s).", "", "## Overview", "", block(overview), ""]
    yield _joined(lines)
    grouped: set[str] = set()
    for group in groups:
        members = [r for r in map(results.get, group.article_ids) if r is not None]
        grouped.update(group.article_ids)
        if members:
            yield _section(group.label, members)
    for result in results:  # every article in no group, on its own, in id order
        if result.id not in grouped:
            yield _section("", [result])
    flagged = ((r, flag) for r in results for flag in r.checks)
    first = next(flagged, None)
    if first is not None or overview_checks:
        lines = ["## Checks", "", _CHECKS_NOTE, ""]
        lines += [_check_line(flag, "overview: ") for flag in overview_checks]
        yield _joined(lines)
        if first is not None:
            for r, flag in itertools.chain([first], flagged):
                yield _check_line(flag, f"{code(r.id)}: ") + "\n"
        yield "\n"
    lines = []
    if duplicates:
        lines += ["## Same story elsewhere", ""]
        lines += [f"- {link(source, source)}: {inline(reason)}" for source, reason in duplicates] + [""]
    if failures:
        lines += ["## Not processed", ""]
        lines += [f"- {code(source)}: {inline(reason)}" for source, reason in failures] + [""]
    lines += ["## Glossary", ""]
    lines.append(glossary_table([t.entry for t in terms]) if terms else "(no terms)")
    yield _joined(lines)


def _section(label: str, members: list[ArticleResult]) -> str:
    """One story: under its label when several articles tell it, else the article alone."""
    lines = [f"## {inline(label)}", ""] if len(members) > 1 else []
    level = "###" if len(members) > 1 else "##"
    for result in members:
        lines += [f"{level} {inline(result.title)}", "", f"*Source: {_briefing_source(result)}*", ""]
        lines += [block(_marked(result.summary, result.checks, "summary")), ""]
        points = [_marked(p, result.checks, f"key_points[{i}]") for i, p in enumerate(result.key_points)]
        lines += [f"- {inline(p)}" for p in points] + [""]
    return _joined(lines)


def _joined(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)
