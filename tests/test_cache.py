"""The on-disk cache: one SQLite store, damaged rows are counted misses, stats, clear, cost."""

from __future__ import annotations

import json
import logging
import sqlite3
import statistics
import time
from pathlib import Path

import pytest

import pipeline.cache as cache_module
from pipeline.cache import DATABASE_NAME, Cache, cache_key, checksum


def rows(directory: Path) -> sqlite3.Connection:
    """A second connection to the store, as another program would open it."""
    return sqlite3.connect(directory / DATABASE_NAME, isolation_level=None)


def write_legacy_entry(directory: Path, key: str, value: dict[str, object]) -> Path:
    """An entry exactly as the previous one-file-per-entry cache wrote it."""
    entry = {"format": 1, "key": key, "checksum": cache_key({"value": value}), "value": value}
    path = directory / key[:2] / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")
    return path


def test_round_trip_and_key_is_content_hash(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    key = cache_key({"model": "m", "messages": [{"role": "user", "content": "你好"}]})
    assert key == cache_key({"messages": [{"content": "你好", "role": "user"}], "model": "m"})  # order-free
    assert cache.get(key) is None
    cache.put(key, {"data": {"title": "標題"}})
    assert Cache(tmp_path).get(key) == {"data": {"title": "標題"}}
    (stored,) = rows(tmp_path).execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
    assert json.loads(stored) == {"data": {"title": "標題"}}  # in the one database, not a file per entry
    assert not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob("*-journal"))  # nothing half-written


def test_one_table_in_one_wal_database(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    for n in range(3):
        cache.put(cache_key({"n": n}), {"data": {"n": n}})
    names = {path.name for path in (tmp_path / "c").iterdir()}
    assert names <= {"CACHEDIR.TAG", DATABASE_NAME, DATABASE_NAME + "-wal", DATABASE_NAME + "-shm"}
    db = rows(tmp_path / "c")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert [row[1] for row in db.execute("PRAGMA table_info(entries)")] == [
        "key",
        "value",
        "checksum",
        "created",
        "format",
    ]
    assert db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [("entries",)]
    assert db.execute("SELECT count(*) FROM entries").fetchone() == (3,)
    assert cache.entries() == sorted(cache_key({"n": n}) for n in range(3))


def test_truncated_or_foreign_entries_are_misses_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = Cache(tmp_path)
    keys = [cache_key({"n": n}) for n in range(7)]
    for key in keys:
        cache.put(key, {"data": {"n": key}})
    db = rows(tmp_path)
    whole = db.execute("SELECT value FROM entries WHERE key = ?", (keys[0],)).fetchone()[0]
    db.execute("UPDATE entries SET value = ? WHERE key = ?", (whole[: len(whole) // 2], keys[0]))  # cut short
    db.execute("UPDATE entries SET value = ? WHERE key = ?", (b"\x00\xff garbage", keys[1]))
    tampered = json.dumps({"data": {"n": "tampered"}}).encode()
    db.execute("UPDATE entries SET value = ? WHERE key = ?", (tampered, keys[2]))  # checksum left as it was
    garbage = b"\xff\xfe not json"
    db.execute(
        "UPDATE entries SET value = ?, checksum = ? WHERE key = ?", (garbage, checksum(keys[3], garbage), keys[3])
    )
    array = b"[1, 2]"
    db.execute("UPDATE entries SET value = ?, checksum = ? WHERE key = ?", (array, checksum(keys[4], array), keys[4]))
    db.execute("UPDATE entries SET format = 99 WHERE key = ?", (keys[5],))
    caplog.set_level(logging.WARNING, "pipeline.cache")
    assert [cache.get(k) is None for k in keys] == [True, True, True, True, True, True, False]
    assert cache.corrupt_reads == 6
    assert all(keys[n][:12] in caplog.text for n in range(6)) and keys[6][:12] not in caplog.text
    assert "checksum mismatch" in caplog.text and "not JSON" in caplog.text and "not an object" in caplog.text
    stats = cache.stats()
    assert (stats.entries, stats.corrupt) == (7, 6) and stats.bytes > 0


def test_a_damaged_row_is_rewritten_whole_by_the_next_put(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    key = cache_key({"n": 1})
    cache.put(key, {"data": {"n": 1}})
    rows(tmp_path).execute("UPDATE entries SET value = x'00'")
    assert cache.get(key) is None and cache.stats().corrupt == 1
    cache.put(key, {"data": {"n": 1}})
    assert cache.get(key) == {"data": {"n": 1}} and cache.stats().corrupt == 0


def test_clear_removes_entries_and_stray_temporaries(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    for n in range(3):
        cache.put(cache_key({"n": n}), {"data": {}})
    shard = tmp_path / "c" / "ab"  # a temporary the previous layout left behind
    shard.mkdir()
    (shard / ".tmp-x1y2z3w4.part").write_text('{"format": 1, "key": "ab' + "0" * 62 + '", "checks')
    assert cache.clear() == 3
    assert cache.stats().entries == 0 and not list((tmp_path / "c").rglob("*.part"))
    assert cache.get(cache_key({"n": 0})) is None
    assert Cache(tmp_path / "missing").clear() == 0
    assert not (tmp_path / "missing").exists()


def test_old_layout_entries_are_misses_not_errors(tmp_path: Path) -> None:
    key = cache_key({"n": 1})
    write_legacy_entry(tmp_path, key, {"data": {"n": 1}})
    cache = Cache(tmp_path)
    assert cache.get(key) is None and cache.corrupt_reads == 0
    cache.put(key, {"data": {"n": 2}})
    assert Cache(tmp_path).get(key) == {"data": {"n": 2}}
    assert cache.stats().legacy == 1 and cache.stats().entries == 1


def test_a_value_that_is_not_json_is_skipped_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = Cache(tmp_path)
    cache.put("k" * 64, {"data": {1, 2}})  # a set: not JSON
    assert cache.get("k" * 64) is None and "not stored" in caplog.text


def test_background_checkpoint_folds_the_wal_and_bounds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "_CHECKPOINT_EVERY", 20)
    monkeypatch.setattr(cache_module, "_WAL_MAX_FRAMES", 10)
    cache = Cache(tmp_path)
    keys = [cache_key({"n": n}) for n in range(20)]
    for key in keys:
        cache.put(key, {"data": {"text": "長文" * 500}})
    deadline = time.monotonic() + 10
    while (tmp_path / (DATABASE_NAME + "-wal")).stat().st_size and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (tmp_path / (DATABASE_NAME + "-wal")).stat().st_size == 0  # folded in, then truncated
    assert (tmp_path / DATABASE_NAME).stat().st_size > 20 * 3000  # the rows are in the database file itself
    assert all(Cache(tmp_path).get(key) == {"data": {"text": "長文" * 500}} for key in keys)


def test_a_put_and_a_get_stay_far_below_a_millisecond(tmp_path: Path) -> None:
    """A guard, not the benchmark (bench/cache.py): medians, with room for a busy machine."""
    cache = Cache(tmp_path)
    value = {"data": {"title": "標題", "summary": "A sentence of a summary. " * 40, "points": ["p" * 80] * 5}}
    keys = [cache_key({"n": n}) for n in range(400)]
    puts, gets = [], []
    for key in keys:
        start = time.perf_counter()
        cache.put(key, value)
        puts.append(time.perf_counter() - start)
    warm = Cache(tmp_path)
    for key in keys + keys:
        start = time.perf_counter()
        assert warm.get(key) is not None
        gets.append(time.perf_counter() - start)
    assert statistics.median(puts) < 0.0015, statistics.median(puts)  # the old fsync'd file: ~4 ms
    assert statistics.median(gets) < 0.00025, statistics.median(gets)
