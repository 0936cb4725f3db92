"""The "seen" store: by URL and by content hash, filters for since/new-only, one store shared by two processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.errors import CacheError
from pipeline.sources.seen import SEEN_FILE, DuplicateGate, SeenStore, select_items, text_hash


@dataclass(frozen=True)
class Item:
    link: str | None
    published_at: datetime | None


def test_marked_url_is_seen_in_any_spelling(tmp_path: Path) -> None:
    with SeenStore.in_cache(tmp_path) as store:
        assert not store.has_url("https://news.example/a.html")
        store.mark("https://News.example/a.html?utm_source=rss#x", text_hash("正文"))
        assert store.has_url("https://news.example:443/a.html")
        assert not store.has_url("https://news.example/b.html")
    assert (tmp_path / SEEN_FILE).is_file()


def test_content_hash_remembers_where_it_came_from(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "s.sqlite3") as store:
        store.mark("https://a.example/1", text_hash("同一篇 稿件"))
        store.mark(None, text_hash("只有文本"))  # a file: no URL
        assert store.has_content(text_hash("同一篇\n稿件")) == "https://a.example/1"  # spacing does not matter
        assert store.has_content(text_hash("只有文本")) == ""
        assert store.has_content(text_hash("别的")) is None


def test_aliases_are_seen_too(tmp_path: Path) -> None:
    with SeenStore.in_cache(tmp_path) as store:
        store.mark("https://site.example/canonical/1", "h", "https://feed.example/go?id=1&utm_source=rss", None)
        assert store.has_url("https://feed.example/go?id=1") and store.has_url("https://site.example/canonical/1")
        assert store.has_content("h") == "https://site.example/canonical/1"


def test_store_survives_reopening_and_marking_twice(tmp_path: Path) -> None:
    with SeenStore.in_cache(tmp_path) as store:
        store.mark("https://a.example/1", "h1")
        store.mark("https://a.example/1", "h1")
    with SeenStore.in_cache(tmp_path) as store:
        assert store.has_url("https://a.example/1") and store.has_content("h1") == "https://a.example/1"
    mode = sqlite3.connect(tmp_path / SEEN_FILE).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_unusable_location_is_a_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CacheError, match="seen-stories store"):
        SeenStore(blocker / "seen.sqlite3")


def _writer(path: str, prefix: str, count: int) -> None:
    with SeenStore(Path(path)) as store:
        for n in range(count):
            store.mark(f"https://{prefix}.example/{n}", f"{prefix}-{n}")
            store.has_url(f"https://other.example/{n}")


@pytest.mark.slow
def test_two_processes_share_one_store(tmp_path: Path) -> None:
    path = str(tmp_path / SEEN_FILE)
    SeenStore(Path(path)).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, name, 200)) for name in ("one", "two")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    with SeenStore(Path(path)) as store:
        assert all(store.has_url(f"https://{p}.example/{n}") for p in ("one", "two") for n in range(200))


def test_select_items_by_since_new_only_and_duplicates(tmp_path: Path) -> None:
    may = datetime(2024, 5, 15, tzinfo=UTC)
    items = [
        Item("https://a.example/new", may),
        Item("https://a.example/old", datetime(2024, 3, 1, tzinfo=UTC)),
        Item("https://a.example/undated", None),
        Item("https://a.example/new?utm_source=feed2", may),  # the same story again
        Item("https://a.example/done", may),
        Item(None, may),  # carries its own text
    ]
    with SeenStore.in_cache(tmp_path) as store:
        store.mark("https://a.example/done", None)
        taken: set[str] = set()
        chosen = select_items(items, since=datetime(2024, 5, 1), new_only=True, seen=store, taken=taken)
        assert [item.link for item in chosen.items] == ["https://a.example/new", "https://a.example/undated", None]
        assert (chosen.too_old, chosen.duplicates, chosen.seen_before) == (1, 1, 1)
        # a second feed in the same run brings nothing already taken
        again = select_items(items[:1], since=None, new_only=False, seen=store, taken=taken)
        assert again.items == [] and again.duplicates == 1


def test_duplicate_gate_admits_a_story_once_per_run_and_never_again_when_new_only(tmp_path: Path) -> None:
    with SeenStore.in_cache(tmp_path) as store:
        store.mark("https://old.example/1", text_hash("旧稿件"))
        gate = DuplicateGate(store, new_only=True)
        assert gate.admit("https://feed-a.example/x", text_hash("新稿件")) is None
        assert gate.admit("https://feed-b.example/y", text_hash("新稿件")) == "https://feed-a.example/x"
        assert gate.admit("https://c.example/z", text_hash("旧稿件")) == "https://old.example/1"
        assert DuplicateGate(store, new_only=False).admit("https://c.example/z", text_hash("旧稿件")) is None
