"""Sources: where inputs come from. Files, folders and stdin (files.py); URLs, feeds, OPML and URL lists (web.py).

A source yields RawInput records lazily, each with its bytes or the reason there are none, and
proposes an id; the run makes ids unique. `open_inputs` sends each command-line target to the
source that reads it (decided by content, not only by name).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import ConfigError
from pipeline.records import RawInput

_AGO = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class WebOptions:
    """How web targets are read: which items, whether robots.txt is obeyed, where the cache lives."""

    since: datetime | None = None
    new_only: bool = False
    ignore_robots: bool = False
    urls_from: str | None = None  # a file listing URLs, one per line ("-" for stdin)


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """`--since`: "24h", "3d", "2w" ago, or a date ("2026-11-20") / date-time in ISO 8601."""
    if not value:
        return None
    now = now or datetime.now(UTC)
    ago = _AGO.match(value)
    if ago:
        amount, unit = int(ago.group(1)), ago.group(2).lower()
        return now - timedelta(hours=amount) * {"h": 1, "d": 24, "w": 24 * 7}[unit]
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"--since: expected 24h, 3d, 2w or a date like 2026-11-20, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_ARTICLE_SUFFIXES = (".txt", ".md", ".html", ".htm")
_FEED_MARKS = (b"<rss", b"<feed", b"<opml", b"<rdf:rdf")


def _plainly_a_path(target: str) -> bool:
    """Cheap answer for the common case (a folder, an article file), so the web stack is not even imported."""
    if target == "-":
        return True
    if "://" in target:
        return False
    path = Path(target)
    if path.is_dir():
        return True
    if path.suffix.lower() not in _ARTICLE_SUFFIXES:
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return True  # the files source reports why it cannot be read
    if any(mark in head.lower() for mark in _FEED_MARKS):
        return False
    first = next((line.strip() for line in head.splitlines() if line.strip() and not line.startswith(b"#")), b"")
    return not first.lower().startswith((b"http://", b"https://"))


def split_targets(targets: Sequence[str]) -> tuple[list[str], list[str]]:
    """(file/folder/stdin targets, web targets: URLs, feed files, OPML files, URL lists)."""
    paths: list[str] = []
    web: list[str] = []
    for target in targets:
        if _plainly_a_path(target):
            paths.append(target)
            continue
        from pipeline.sources.web import classify_target

        (paths if classify_target(target) == "path" else web).append(target)
    return paths, web


async def open_inputs(
    targets: Sequence[str],
    stdin: BinaryIO,
    skip: Callable[[str], bool],
    web: WebOptions,
    cache_dir: Path | None,
    seen: object | None = None,
) -> AsyncIterator[RawInput]:
    """Every input the targets name: files first, in order, then everything from the web, in order."""
    from pipeline.responsive import iterate_off_loop
    from pipeline.sources.files import STDIN, file_inputs

    paths, web_targets = split_targets(targets)
    if web.urls_from == "-":  # the list itself on stdin: one URL per line
        from pipeline.sources.feeds import parse_url_list

        urls, errors = parse_url_list(stdin.read(5_000_000).decode("utf-8", errors="replace"), "-")
        web_targets += urls
        for error in errors:
            yield RawInput(error.source, "url-list", error=error)
    elif web.urls_from:
        web_targets.append(web.urls_from)
    files = file_inputs(paths, stdin, skip)
    # Never stdin in a worker thread: from a terminal the read blocks until EOF, and a thread blocked
    # there would hold the process open after Ctrl-C (its executor is joined at exit).
    if STDIN in paths:
        for raw in files:
            yield raw
    else:
        async for raw in iterate_off_loop(files):
            yield raw
    if not web_targets:
        return
    from pipeline.sources.seen import SeenStore
    from pipeline.sources.web import web_inputs

    store = seen if isinstance(seen, SeenStore) else None
    async for raw in web_inputs(
        web_targets,
        cache_dir=cache_dir,
        since=web.since,
        new_only=web.new_only,
        seen=store,
        ignore_robots=web.ignore_robots,
        offline=False,
    ):
        yield raw
