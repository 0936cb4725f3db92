"""Model replies and page metadata are untrusted text: make them inert inside Markdown.

Nothing a model or a page says may open a link, an image, raw HTML, a heading, a table cell or
a code span, nor carry terminal escape sequences; a title stays on one line.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from pipeline.terminal import printable

# Backslash-escapable ASCII punctuation that can start Markdown or HTML structure anywhere in a line.
_INLINE_SPECIAL = "\\`*_[]<>|&~"
_ESCAPED = str.maketrans({char: "\\" + char for char in _INLINE_SPECIAL})
_ANY_SPECIAL = re.compile("[" + re.escape(_INLINE_SPECIAL) + "]")  # translate looks up every character: ask first
# Characters that make structure at the start of a line (a heading, a quote, a list item, a rule).
_LINE_START = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_BACKTICKS = re.compile(r"`+")


def inline(text: str) -> str:
    """One line of plain text for a heading, a list item or a sentence."""
    flat = " ".join(printable(str(text)).split())
    if _ANY_SPECIAL.search(flat):
        flat = flat.translate(_ESCAPED)
    start = _LINE_START.match(flat)
    return flat if start is None else f"{flat[: start.start(2)]}\\{flat[start.start(2) :]}"


def block(text: str) -> str:
    """A paragraph or more: paragraph breaks kept, every line made inert."""
    paragraphs = _PARAGRAPH_BREAK.split(printable(str(text)).strip())
    return "\n\n".join(inline(p) for p in paragraphs if p.strip())


def cell(text: str) -> str:
    """A table cell: one line, pipes escaped."""
    return inline(text)


def code(text: str) -> str:
    """An inline code span that holds `text` whatever backticks it contains."""
    flat = " ".join(printable(str(text)).split())
    longest = max((len(run) for run in _BACKTICKS.findall(flat)), default=0) if "`" in flat else 0
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def safe_url(url: str | None) -> str | None:
    """An http(s) URL fit for a Markdown link target, or None (javascript:, data:, anything else)."""
    if not url:
        return None
    url = printable(url).strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return quote(url, safe=":/?#&=%+,;~.-_!$'*@")


def link(label: str, url: str | None) -> str:
    """`[label](url)` for a safe URL, else the label alone."""
    target = safe_url(url)
    return f"[{inline(label)}]({target})" if target else inline(label)
