"""A damaged database, an unwritable folder, a disk that fills mid-run: warn, go on uncached, never crash."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pipeline.cache import DATABASE_NAME, TAG_NAME, TAG_TEXT, Cache, cache_key
from pipeline.errors import CacheError

ROOT = Path(__file__).resolve().parent.parent
KEYS = [cache_key({"n": n}) for n in range(300)]


def permission_bits_bind() -> bool:
    """False for root (or anyone with CAP_DAC_OVERRIDE): chmod cannot make a folder read-only for them."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o500)
        try:
            Path(folder, "probe").touch()
        except PermissionError:
            return True
        finally:
            os.chmod(folder, 0o700)
    return False


read_only_works = pytest.mark.skipif(not permission_bits_bind(), reason="permission bits do not bind this user (root)")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def warnings_about(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and words in r.getMessage()]


def use_it_as_a_run_would(cache: Cache) -> None:
    cache.check_writable()
    for key in KEYS[:20]:
        assert cache.get(key) is None
        cache.put(key, {"data": {}})


@pytest.mark.parametrize(
    "content",
    [b"hello, this is a text file, not a database\n" * 50, b"SQLite format 3\x00" + b"\x00" * 84, b"\x00\xff" * 3000],
    ids=["text", "header-only", "binary"],
)
def test_a_file_that_is_not_our_database_warns_once_and_stays_untouched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    (tmp_path / TAG_NAME).write_bytes(TAG_TEXT)  # a brief cache folder, yet the file is not brief's
    (tmp_path / DATABASE_NAME).write_bytes(content)
    before = digest(tmp_path / DATABASE_NAME)
    use_it_as_a_run_would(Cache(tmp_path))
    assert len(warnings_about(caplog, "going on without the cache")) == 1
    with pytest.raises(CacheError, match="not brief's database"):
        Cache(tmp_path).stats()
    with pytest.raises(CacheError, match="refusing to delete"):
        Cache(tmp_path).clear()
    assert digest(tmp_path / DATABASE_NAME) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [TAG_NAME, DATABASE_NAME]  # no -wal, -shm, journal


def test_another_program_s_sqlite_database_is_not_ours(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / TAG_NAME).write_bytes(TAG_TEXT)
    other = sqlite3.connect(tmp_path / DATABASE_NAME)
    other.execute("CREATE TABLE users (name TEXT)")
    other.execute("INSERT INTO users VALUES ('alice')")
    other.commit()
    other.close()
    before = digest(tmp_path / DATABASE_NAME)
    use_it_as_a_run_would(Cache(tmp_path))
    assert len(warnings_about(caplog, "not brief's database")) == 1
    with pytest.raises(CacheError, match="refusing to delete"):
        Cache(tmp_path).clear()
    assert digest(tmp_path / DATABASE_NAME) == before


def test_a_truncated_database_is_uncached_for_the_run_and_clear_removes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache(tmp_path)
    for key in KEYS:
        cache.put(key, {"data": {"text": "新聞" * 300}})
    cache.close()  # the last connection folds the WAL into the file and removes it
    assert not (tmp_path / (DATABASE_NAME + "-wal")).exists()
    whole = (tmp_path / DATABASE_NAME).read_bytes()
    (tmp_path / DATABASE_NAME).write_bytes(whole[: len(whole) // 2])
    damaged = Cache(tmp_path)
    damaged.check_writable()
    found = [damaged.get(key) for key in KEYS]  # rows on the surviving pages may still be read
    assert found[-1] is None and damaged.corrupt_reads == 0
    for key in KEYS[:5]:
        damaged.put(key, {"data": {}})
    assert len(warnings_about(caplog, "going on without the cache")) == 1
    assert Cache(tmp_path).clear() == 0  # its header proves it is brief's: its files go
    assert not (tmp_path / DATABASE_NAME).exists()
    fresh = Cache(tmp_path)
    fresh.put(KEYS[0], {"data": {"n": 0}})
    assert fresh.get(KEYS[0]) == {"data": {"n": 0}}


def test_an_empty_database_file_is_claimed(tmp_path: Path) -> None:
    (tmp_path / DATABASE_NAME).write_bytes(b"")  # as another process leaves it a moment after creating it
    cache = Cache(tmp_path)
    assert cache.get(KEYS[0]) is None
    cache.put(KEYS[0], {"data": {"n": 0}})
    assert Cache(tmp_path).get(KEYS[0]) == {"data": {"n": 0}}


def test_a_cache_path_under_a_regular_file_fails_early_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    cache = Cache(tmp_path / "file" / "cache")
    with pytest.raises(CacheError) as failed:
        cache.check_writable()
    message = str(failed.value)
    assert message.startswith(f"cannot write to cache {tmp_path / 'file' / 'cache'}: ")
    assert message.endswith(" (use --cache-dir or --no-cache)") and "\n" not in message
    assert f"{tmp_path / 'file'} is not a directory" in message and failed.value.exit_code == 2
    cache.put(KEYS[0], {"data": {}})  # a put never raises: it warns and stops
    assert cache.get(KEYS[0]) is None


@read_only_works
def test_a_read_only_folder_fails_early(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(
            CacheError, match=r"cannot write to cache .*ro: Permission denied \(use --cache-dir or --no-cache\)$"
        ):
            Cache(folder).check_writable()
    finally:
        folder.chmod(0o700)


@read_only_works
def test_a_read_only_database_fails_early(tmp_path: Path) -> None:
    Cache(tmp_path).put(KEYS[0], {"data": {}})
    Cache(tmp_path).close()
    (tmp_path / DATABASE_NAME).chmod(0o400)
    try:
        with pytest.raises(CacheError, match="readonly|read-only|Permission"):
            Cache(tmp_path).check_writable()
    finally:
        (tmp_path / DATABASE_NAME).chmod(0o600)


DISK_FILLS = r"""
import logging, resource, signal, sys
from pathlib import Path
from pipeline.cache import Cache, cache_key

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
cache = Cache(Path(sys.argv[1]))
cache.check_writable()
keys = [cache_key({"n": n}) for n in range(60)]
for key in keys[:10]:
    cache.put(key, {"data": {"n": key}})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like a full disk
limit = max(f.stat().st_size for f in Path(sys.argv[1]).iterdir()) + 20000
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
for key in keys[10:]:
    cache.put(key, {"data": {"n": key, "pad": "x" * 4000}})
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
print(sum(cache.get(key) == {"data": {"n": key}} for key in keys[:10]))
"""


def test_a_disk_that_fills_mid_run_warns_once_and_the_run_goes_on(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", DISK_FILLS, str(tmp_path / "cache")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10"]  # what was stored before stays readable
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("WARNING cache unwritable: "), done.stderr
    assert lines[0].endswith("; going on without caching") and "Traceback" not in done.stderr
