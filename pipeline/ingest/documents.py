"""Ingest: article bytes → cleaned Documents (one per story), with language, script and flags.

Pure functions, no network: decode (decode), clean (clean: inline, blocks, chrome, mojibake), split
stories, then detect language and script and convert to Simplified (language, conversion).
"""

from __future__ import annotations

import re
from collections import Counter

from pipeline.errors import InputError
from pipeline.ingest.clean import Line, clean_lines, html_to_text, looks_like_html, unescape_entities
from pipeline.ingest.decode import decode_bytes
from pipeline.ingest.language import convert, detect_language, detect_script, simplify_config
from pipeline.ingest.mojibake import MOJIBAKE_MARKER
from pipeline.languages import profile
from pipeline.paths import path_stem
from pipeline.records import Document

# A piece of text between two disclaimers is a story of its own only if it is this long;
# shorter pieces (a signature, a stray caption) stay with the story before them.
_MIN_STORY_CHARS = 150


def document_id(source: str) -> str:
    """The id stem of an input: its file name without extension, or "stdin"."""
    return "stdin" if source in ("-", "stdin") else path_stem(source)


def _split_stories(lines: list[Line]) -> list[list[Line]]:
    """Cut at disclaimer lines that have a full story on both sides."""
    segments: list[list[Line]] = [[]]
    for line in lines:
        if line.kind == "boundary":
            segments.append([line])  # keep its counts with the story it opens
        else:
            segments[-1].append(line)
    stories: list[list[Line]] = []
    for segment in segments:
        if stories and _story_chars(segment) < _MIN_STORY_CHARS:
            stories[-1].extend(segment)
        elif not stories or _story_chars(stories[-1]) >= _MIN_STORY_CHARS:
            stories.append(segment)
        else:
            stories[-1].extend(segment)
    return stories


def _story_chars(lines: list[Line]) -> int:
    return sum(len(line.text) for line in lines if line.kind == "text")


def _join(lines: list[Line]) -> str:
    """Kept lines in order, one blank line at most between them."""
    text = "\n".join(line.text for line in lines if line.kind != "boundary")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _removed(lines: list[Line]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for line in lines:
        total.update(line.counts)
    return {kind: count for kind, count in sorted(total.items()) if count and kind != "mojibake"}


def _mojibake_flags(text: str) -> list[str]:
    positions = [m.start() for m in re.finditer(re.escape(MOJIBAKE_MARKER), text)]
    if not positions:
        return []
    return [f"mojibake:{len(positions)}", "mojibake_at:" + ",".join(map(str, positions))]


def build_document(doc_id: str, source: str, lines: list[Line], file_flags: list[str]) -> Document:
    text = _join(lines)
    language = detect_language(text)
    flags = list(file_flags) + _mojibake_flags(text)
    script: str | None = None
    simplified = text
    if profile(language).opencc:  # never Japanese: kanji must not pass through OpenCC
        t2s = convert(text, "t2s")
        script = detect_script(text, t2s)
        config = simplify_config(text) if script != "simplified" else "t2s"
        simplified = t2s if config == "t2s" else convert(text, config)
        flags.append(f"opencc:{config}")
    removed = _removed(lines)
    flags += [f"removed:{kind}:{count}" for kind, count in removed.items()]
    return Document(doc_id, source, text, language, script, simplified, tuple(flags), removed)


def ingest(payload: bytes, source: str, base_id: str | None = None) -> list[Document]:
    """Decode and clean one input; one Document per story. Raises InputError for unusable input."""
    decoded = decode_bytes(payload, source)
    text = decoded.text
    file_flags = [f"encoding:{decoded.encoding}"]
    if decoded.had_crlf:
        file_flags.append("crlf")
    if looks_like_html(text):
        text = html_to_text(text)
        file_flags.append("html")
    else:
        text = unescape_entities(text)
    lines = clean_lines(text.split("\n"))
    stories = [story for story in _split_stories(lines) if _story_chars(story)]
    if not stories:
        raise InputError(source, "no article text left after removing page chrome")
    stem = base_id or document_id(source)
    if len(stories) == 1:
        return [build_document(stem, source, stories[0], file_flags)]
    return [
        build_document(f"{stem}#{n}", source, story, [*file_flags, f"story:{n}/{len(stories)}"])
        for n, story in enumerate(stories, start=1)
    ]
