"""Model replies and page metadata are untrusted text: make them inert inside Markdown.

Nothing a model or a page says may open a link, an image, raw HTML, a heading, a table cell or
a code span, nor carry terminal escape sequences; a title stays on one line.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from pipeline.terminal import printable

# Backslash-escapable ASCII punctuation that can start Markdown or HTML structure anywhere in a line.
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")
# Characters that make structure at the start of a line (a heading, a quote, a list item, a rule).
_LINE_START = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])")


def inline(text: str) -> str:
    """One line of plain text for a heading, a list item or a sentence."""
    flat = " ".join(printable(str(text)).split())
    return _LINE_START.sub(r"\1\\\2", _INLINE_SPECIAL.sub(r"\\\1", flat))


def block(text: str) -> str:
    """A paragraph or more: paragraph breaks kept, every line made inert."""
    paragraphs = re.split(r"\n\s*\n", printable(str(text)).strip())
    return "\n\n".join(inline(p) for p in paragraphs if p.strip())


def cell(text: str) -> str:
    """A table cell: one line, pipes escaped."""
    return inline(text)


def code(text: str) -> str:
    """An inline code span that holds `text` whatever backticks it contains."""
    flat = " ".join(printable(str(text)).split())
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
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
