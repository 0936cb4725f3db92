"""What the cache may delete: only what it can prove is brief's; a folder that is not a cache is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.cache import APPLICATION_ID, DATABASE_NAME, TAG_NAME, Cache, cache_key
from pipeline.errors import CacheError
from tests.test_cache import write_legacy_entry

SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for a folder, the target for a link)."""
    found: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[name] = os.readlink(path).encode()
        else:
            found[name] = None if path.is_dir() else path.read_bytes()
    return found


def test_a_folder_brief_creates_is_tagged_and_a_folder_it_finds_is_not(tmp_path: Path) -> None:
    Cache(tmp_path / "a" / "cache").check_writable()
    tag = (tmp_path / "a" / "cache" / TAG_NAME).read_bytes()
    assert tag.startswith(SIGNATURE + b"\n") and b"brief" in tag.splitlines()[1]
    assert not (tmp_path / "a" / TAG_NAME).exists()  # only the cache folder itself
    Cache(tmp_path).put(cache_key({"n": 1}), {"data": {}})
    assert not (tmp_path / TAG_NAME).exists()  # never tag a folder brief did not create


def test_a_project_folder_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text('{"name": "app", "version": "1.0.0"}')
    (project / "users.json").write_text('[{"key": "alice", "format": 1}]')
    shard = project / "ab"  # looks like the old layout, but nothing in it is brief's
    shard.mkdir()
    (shard / f"ab{'0' * 62}.json").write_text('{"key": "someone else", "format": 1}')
    (shard / ".tmp-abcdefgh.part").write_text("a download in progress")
    (project / "CACHEDIR.TAG").write_bytes(SIGNATURE + b"\n# created by another tool\n")
    before = snapshot(project)
    with pytest.raises(CacheError, match="not a brief cache") as refused:
        Cache(project).clear()
    assert "\n" not in str(refused.value) and refused.value.exit_code == 2
    assert snapshot(project) == before


def test_a_real_cache_keeps_the_foreign_files_inside_it(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    cache = Cache(folder)
    for n in range(3):
        cache.put(cache_key({"n": n}), {"data": {"n": n}})
    old = [write_legacy_entry(folder, cache_key({"old": n}), {"data": {"n": n}}) for n in range(3)]
    old[2].write_bytes(old[2].read_bytes()[:100])  # cut short after its key: still provably brief's
    old_temporary = old[0].parent / ".tmp-q1w2e3r4.part"
    old_temporary.write_bytes(b'{"format": 1, "key": "' + old[0].stem.encode() + b'", "checksum": "12')
    link = folder / old[1].parent.name / f"{old[1].parent.name}{'3' * 62}.json"
    outside = tmp_path / "outside.json"  # named and filled like an entry, but a link out of the cache
    outside.write_bytes(b'{"format": 1, "key": "' + link.stem.encode() + b'", "checksum": "", "value": {}}')
    foreign = {
        "notes.txt": b"my notes",
        "ab/readme.json": b"{}",
        f"ab/ab{'1' * 62}.json": json.dumps({"key": "ab" + "1" * 62, "format": 3}).encode(),
        f"cd/cd{'2' * 62}.json": json.dumps({"key": "not the stem", "format": 1}).encode(),
        "cd/.tmp-zzzzzzzz.part": b"someone else's temporary",
        "zz/.tmp-aaaaaaaa.part": b"",  # not a hex shard
    }
    for name, data in foreign.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)
    link.symlink_to(outside)
    before_outside = outside.read_bytes()
    assert cache.clear() == 3 + 3
    assert {name: (folder / name).read_bytes() for name in foreign} == foreign
    assert link.is_symlink() and outside.read_bytes() == before_outside
    assert not any(path.exists() for path in old) and not old_temporary.exists()
    assert (folder / TAG_NAME).exists() and (folder / DATABASE_NAME).exists()
    stats = Cache(folder).stats()
    assert (stats.entries, stats.legacy) == (0, 0)


def test_an_old_layout_cache_without_tag_or_database_can_be_cleared(tmp_path: Path) -> None:
    paths = [write_legacy_entry(tmp_path, cache_key({"n": n}), {"data": {"n": n}}) for n in range(4)]
    assert Cache(tmp_path).stats().legacy == 4
    assert Cache(tmp_path).clear() == 4
    assert list(tmp_path.iterdir()) == []  # shards emptied by clearing are removed too
    assert not any(path.parent.exists() for path in paths)


def test_clear_keeps_the_database_brief_s_and_usable(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    key = cache_key({"n": 1})
    cache.put(key, {"data": {"n": 1}})
    assert cache.clear() == 1
    header = (tmp_path / "c" / DATABASE_NAME).read_bytes()[:100]
    assert int.from_bytes(header[68:72], "big") == APPLICATION_ID  # still provably brief's on disk
    cache.put(key, {"data": {"n": 2}})
    assert Cache(tmp_path / "c").get(key) == {"data": {"n": 2}}


def test_an_empty_folder_clears_to_nothing(tmp_path: Path) -> None:
    assert Cache(tmp_path).clear() == 0
    assert list(tmp_path.iterdir()) == []
