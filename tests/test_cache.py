"""The on-disk cache: atomic entries, corruption is a counted miss, stats and clear."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.cache import Cache, cache_key


def test_round_trip_and_key_is_content_hash(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    key = cache_key({"model": "m", "messages": [{"role": "user", "content": "你好"}]})
    assert key == cache_key({"messages": [{"content": "你好", "role": "user"}], "model": "m"})  # order-free
    assert cache.get(key) is None
    cache.put(key, {"data": {"title": "標題"}})
    assert Cache(tmp_path).get(key) == {"data": {"title": "標題"}}
    assert cache.path_for(key).parent.name == key[:2]
    assert not list(tmp_path.rglob("*.part"))  # no temporary file left behind


def test_truncated_or_foreign_entries_are_misses_and_counted(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    keys = [cache_key({"n": n}) for n in range(4)]
    for key in keys:
        cache.put(key, {"data": {"n": key}})
    whole = cache.path_for(keys[0]).read_bytes()
    cache.path_for(keys[0]).write_bytes(whole[: len(whole) // 2])
    cache.path_for(keys[1]).write_bytes(b"\x00\xff garbage")
    entry = json.loads(cache.path_for(keys[2]).read_text())
    entry["value"]["data"]["n"] = "tampered"
    cache.path_for(keys[2]).write_text(json.dumps(entry))
    assert [cache.get(k) is None for k in keys] == [True, True, True, False]
    assert cache.corrupt_reads == 3
    stats = cache.stats()
    assert (stats.entries, stats.corrupt) == (4, 3) and stats.bytes > 0


def test_clear_removes_entries_and_stray_temporaries(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    for n in range(3):
        cache.put(cache_key({"n": n}), {"data": {}})
    shard = next((tmp_path / "c").iterdir())
    (shard / ".tmp-x.part").write_text("half")
    assert cache.clear() == 3
    assert cache.stats().entries == 0 and not list((tmp_path / "c").rglob("*.part"))
    assert Cache(tmp_path / "missing").clear() == 0
