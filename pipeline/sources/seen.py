"""Only what's new: a small SQLite record of stories already summarised, by canonical URL and by content hash.

The file lives in the cache directory (WAL journal, busy timeout), so two runs may share it: each write
is one short transaction and "INSERT OR IGNORE" makes marking a story twice harmless.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, Literal, Protocol, TypeVar

from pipeline.errors import CacheError
from pipeline.sources.urls import canonical_url

SEEN_FILE = "seen.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_url (url TEXT PRIMARY KEY, content_hash TEXT, seen_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_content (content_hash TEXT PRIMARY KEY, url TEXT, seen_at TEXT NOT NULL);
"""
_SPACE = re.compile(r"\s+")


def text_hash(text: str) -> str:
    """sha256 of a cleaned text with its white space squeezed: the same story spaced otherwise is the same."""
    return hashlib.sha256(_SPACE.sub(" ", text).strip().encode("utf-8")).hexdigest()


class SeenStore:
    """What brief has summarised before. Thread-safe; open one per process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"{self.path}: cannot open the seen-stories store ({exc})") from exc
        self._lock = threading.Lock()

    @classmethod
    def in_cache(cls, cache_dir: Path) -> SeenStore:
        return cls(Path(cache_dir) / SEEN_FILE)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SeenStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _one(self, sql: str, value: str) -> tuple[str | None] | None:
        try:
            with self._lock:
                row: tuple[str | None] | None = self._db.execute(sql, (value,)).fetchone()
        except sqlite3.Error as exc:
            raise CacheError(f"{self.path}: {exc}") from exc
        return row

    def has_url(self, url: str) -> bool:
        """True when the page at `url` (any spelling of it) was summarised before."""
        return self._one("SELECT 1 FROM seen_url WHERE url = ?", canonical_url(url)) is not None

    def has_content(self, content_hash: str) -> str | None:
        """The URL (or source) that first carried this text, when it was summarised before."""
        row = self._one("SELECT url FROM seen_content WHERE content_hash = ?", content_hash)
        return None if row is None else (row[0] or "")

    def mark(self, url: str | None, content_hash: str | None, *aliases: str | None) -> None:
        """Record one summarised story; either key may be missing (a file has no URL). `aliases` are other
        addresses of the same page (the feed's link when the page names another canonical URL)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        key = canonical_url(url) if url else None
        others = {canonical_url(alias) for alias in aliases if alias} - {key}
        try:
            with self._lock, self._db:  # one transaction for all rows
                self._db.execute("BEGIN IMMEDIATE")
                for address in (key, *sorted(others)):
                    if address:
                        self._db.execute(
                            "INSERT OR IGNORE INTO seen_url VALUES (?, ?, ?)", (address, content_hash, now)
                        )
                if content_hash:
                    self._db.execute("INSERT OR IGNORE INTO seen_content VALUES (?, ?, ?)", (content_hash, key, now))
        except sqlite3.Error as exc:
            raise CacheError(f"{self.path}: {exc}") from exc


class Dated(Protocol):
    @property
    def link(self) -> str | None: ...

    @property
    def published_at(self) -> datetime | None: ...


ItemT = TypeVar("ItemT", bound=Dated)
Verdict = Literal["new", "duplicate", "seen"]


def url_verdict(url: str, *, new_only: bool, seen: SeenStore | None, taken: set[str]) -> Verdict:
    """ "duplicate" when the URL already came up in this run (`taken`), "seen" when `new_only` and it was
    summarised before, else "new" (and the URL is added to `taken`)."""
    key = canonical_url(url)
    if key in taken:
        return "duplicate"
    if new_only and seen is not None and seen.has_url(key):
        return "seen"
    taken.add(key)
    return "new"


@dataclass
class Selection(Generic[ItemT]):
    items: list[ItemT]
    too_old: int = 0
    seen_before: int = 0
    duplicates: int = 0


def select_items(
    items: Iterable[ItemT], *, since: datetime | None, new_only: bool, seen: SeenStore | None, taken: set[str]
) -> Selection[ItemT]:
    """Feed items worth reading: published at or after `since` (undated items are kept), not summarised
    before when `new_only`, each canonical link once per run (`taken` is shared across feeds). Items
    without a link carry their own text and are kept."""
    chosen: Selection[ItemT] = Selection([])
    floor = _aware(since) if since else None
    for item in items:
        when = item.published_at
        if floor and when is not None and _aware(when) < floor:
            chosen.too_old += 1
            continue
        verdict = url_verdict(item.link, new_only=new_only, seen=seen, taken=taken) if item.link else "new"
        if verdict == "duplicate":
            chosen.duplicates += 1
        elif verdict == "seen":
            chosen.seen_before += 1
        else:
            chosen.items.append(item)
    return chosen


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class DuplicateGate:
    """The run's last check before summarising: one story once, whichever feeds or URLs brought it.

    `admit` is called with the cleaned text's hash; it says no to a text already admitted in this run and,
    when `new_only`, to one summarised in an earlier run. Call `store.mark` once the summary is written.
    """

    store: SeenStore | None
    new_only: bool
    admitted: dict[str, str] = field(default_factory=dict)  # content hash -> source, this run

    def admit(self, source: str, content_hash: str) -> str | None:
        """None when the story should be summarised, else the source that already carries it."""
        if content_hash in self.admitted:
            return self.admitted[content_hash]
        if self.new_only and self.store is not None and (earlier := self.store.has_content(content_hash)) is not None:
            return earlier or "an earlier run"
        self.admitted[content_hash] = source
        return None
