"""On-disk cache of validated model results: one SQLite database, safe for concurrent processes.

Layout: `brief-cache.sqlite3`, one table `entries(key, value, checksum, created, format)`: the key a
`cache_key`, the value UTF-8 JSON, the checksum a sha256 of both; a row that fails them is a counted
miss, never a crash. The file carries brief's SQLite `application_id` and a folder brief creates gets
a `CACHEDIR.TAG`: `clear()` deletes only what these (or the old layout's own bytes) prove is brief's.

Commit policy: WAL, `synchronous=NORMAL`, one transaction per put. A commit appends to the WAL
with a plain write (no fsync), so a put that returned survives the process being killed at once;
a power cut may lose the last puts but cannot damage the database. Median costs on the shared
2-core box (bench/cache.py): a put 0.13-0.23 ms, a get 0.06 ms, against 4-9 ms and 0.15 ms for the
old fsync'd file per entry; batching, which would lose returned puts on a kill, is not worth it.
The fsyncs happen at checkpoints, which take tens of ms: SQLite's own checkpoint (run inside the
put that crosses its threshold) is off; a short-lived thread with its own connection checkpoints
every `_CHECKPOINT_EVERY` puts instead.

Faults: a damaged or foreign database file is reported once and the run goes on uncached, the
file untouched. If the cache turns unwritable mid-run, `put` warns once and stops writing; it
never raises into the run. `check_writable()` is where an unusable directory fails, up front.

Old layout (`??/<sha256>.json`, `"format": 1`): never read (a miss; the reply is fetched again and
stored in the database), counted by `stats()`, removed with its `.tmp-*.part` files by `clear()`.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import re
import sqlite3
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import CacheError
from pipeline.jsonbytes import canonical

log = logging.getLogger(__name__)

DATABASE_NAME = "brief-cache.sqlite3"
TAG_NAME = "CACHEDIR.TAG"
TAG_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"
TAG_TEXT = TAG_SIGNATURE + (
    b"\n# This file is a cache directory tag created by brief (cached model replies; safe to delete).\n"
    b"# For information about cache directory tags, see https://bford.info/cachedir/\n"
)
APPLICATION_ID = 0x62726965  # "brie", in the SQLite header: the file is brief's
_FORMAT = 2  # of a row; the old one-file-per-entry layout was format 1
_SCHEMA = """CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, checksum TEXT NOT NULL, created REAL NOT NULL, format INTEGER NOT NULL
)"""
_INSERT = "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)"
_BUSY_TIMEOUT_MS = 5000  # write transactions last microseconds: a wait this long means something is stuck
_CHECKPOINT_EVERY = 200  # puts between background checkpoints (~1-2 MB of WAL)
_WAL_MAX_FRAMES = 8192  # ~32 MB: puts never paused for the WAL to start over, so make it (a short wait)
_LEGACY_ENTRY = re.compile(r"([0-9a-f]{2})[0-9a-f]{62}\.json")
_LEGACY_TEMP = re.compile(r"\.tmp-[a-z0-9_]{8}\.part")
_LEGACY_HEAD = b'{"format": 1, "key": "'  # how the old writer began every entry and temporary
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_FORMAT, sqlite3.SQLITE_ERROR}


@dataclass(frozen=True)
class CacheStats:
    path: Path
    entries: int
    bytes: int
    corrupt: int
    legacy: int = 0  # entries of the old one-file-per-entry layout: never read; `clear()` removes them


def cache_key(parts: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines a reply."""
    return hashlib.sha256(canonical(parts)).hexdigest()


@functools.cache
def source_fingerprint() -> str:
    """Hash of brief's own code, prompts and data tables: results from other code are not reused."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".md", ".txt") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def checksum(key: str, blob: bytes) -> str:
    """sha256 of a row's key and value: a damaged value, or one moved under another key, fails it."""
    return hashlib.sha256(key.encode() + b"\x00" + blob).hexdigest()


class _NotOurs(Exception):
    """The database file is not brief's, or no longer recognisably so."""


class Cache:
    """Validated results keyed by content hash, in one SQLite database inside `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.database = self.directory / DATABASE_NAME
        self.corrupt_reads = 0  # rows found damaged during this run
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection; a caller may use threads besides the event loop
        self._unusable: str | None = None  # why the database is off for this run (damaged, not ours)
        self._unwritable: str | None = None  # why puts stopped
        self._puts_since_checkpoint = 0
        self._checkpointing = threading.Lock()

    def check_writable(self) -> None:
        """Fail before the first request when the cache cannot be written; a damaged one only warns."""
        try:
            self._make_directory()
            if not os.access(self.directory, os.W_OK | os.X_OK):  # else SQLite says "unable to open database file"
                raise PermissionError(errno.EACCES, "Permission denied")
            db = self._open(create=True)
            if db is not None:
                with self._lock:
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # a real write, changing nothing
        except (OSError, sqlite3.Error) as exc:
            if not _is_damage(exc):
                raise CacheError(
                    f"cannot write to cache {self.directory}: {_reason(exc)} (use --cache-dir or --no-cache)"
                ) from exc
            self._disable(_reason(exc))

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None when absent, damaged (counted) or the cache is off."""
        try:
            db = self._open(create=False)
            if db is None:
                return None
            with self._lock:
                row = db.execute("SELECT value, checksum, format FROM entries WHERE key = ?", (key,)).fetchone()
        except (OSError, sqlite3.Error) as exc:
            if not _is_busy(exc):
                self._disable(_reason(exc))
            return None
        if row is None:
            return None
        value, problem = _verified(key, *row)
        if problem:
            self.corrupt_reads += 1
            log.warning("cache entry %s… is damaged (%s): treated as a miss", key[:12], problem)
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store and commit at once (see the module docstring); never raises into the run."""
        if self._unwritable or self._unusable:
            return
        try:
            blob = json.dumps(value, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            log.warning("cache entry %s… not stored: %s", key[:12], exc)
            return
        try:
            db = self._open(create=True)
            if db is None:
                return
            with self._lock:
                db.execute(_INSERT, (key, blob, checksum(key, blob), time.time(), _FORMAT))
        except (OSError, sqlite3.Error) as exc:
            if _is_damage(exc):
                self._disable(_reason(exc))
            elif _is_busy(exc):  # another process held the lock for seconds: skip this one, go on
                log.warning("cache %s busy (%s): a result was not cached", self.directory, _reason(exc))
            elif self._unwritable is None:
                self._unwritable = _reason(exc)
                log.warning("cache unwritable: %s: %s; going on without caching", self.directory, self._unwritable)
            return
        self._puts_since_checkpoint += 1
        if self._puts_since_checkpoint >= _CHECKPOINT_EVERY and self._checkpointing.acquire(blocking=False):
            self._puts_since_checkpoint = 0
            try:
                threading.Thread(target=self._checkpoint, name="brief-cache-checkpoint", daemon=True).start()
            except RuntimeError:  # no thread to be had: try again after the next batch
                self._checkpointing.release()

    def close(self) -> None:
        """Close the connection (the last one closed folds the WAL into the database and removes it)."""
        with self._checkpointing, self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def entries(self) -> list[str]:
        """Every stored key, sorted (for tests and tools; rows are not verified)."""
        db = self._open(create=False)
        with self._lock:
            return [key for (key,) in db.execute("SELECT key FROM entries ORDER BY key")] if db else []

    def stats(self) -> CacheStats:
        """Count rows and bytes, verifying each row; also count old-layout entries left on disk."""
        legacy = len(_legacy_files(self.directory)[0]) if self.directory.is_dir() else 0
        try:
            db = self._open(create=False)
        except (OSError, sqlite3.Error) as exc:
            self._unusable = _reason(exc)
        if self._unusable:
            raise CacheError(f"cannot read cache database {self.database}: {self._unusable}")
        if db is None:
            return CacheStats(self.directory, 0, 0, 0, legacy)
        with self._lock:
            found = [_verified(*row)[1] for row in db.execute("SELECT key, value, checksum, format FROM entries")]
        size = sum(_size(self.directory / (DATABASE_NAME + suffix)) for suffix in ("", "-wal"))
        return CacheStats(self.directory, len(found), size, sum(p is not None for p in found), legacy)

    def clear(self) -> int:
        """Delete every entry brief can prove is its own; return how many went. Refuse a non-cache folder."""
        if not self.directory.is_dir() or not any(self.directory.iterdir()):
            return 0
        legacy, temporaries = _legacy_files(self.directory)
        ours = _head(self.directory / TAG_NAME, 512)
        if not (ours.startswith(TAG_SIGNATURE) and b"created by brief" in ours) and not legacy:
            if not _database_is_ours(self.database):
                raise CacheError(
                    f"refusing to clear {self.directory}: not a brief cache "
                    "(no CACHEDIR.TAG from brief, no brief database, no brief entries)"
                )
        removed = self._clear_database() if self.database.exists() else 0
        for path in legacy + temporaries:
            path.unlink(missing_ok=True)
        for shard in {path.parent for path in legacy + temporaries}:
            if not any(shard.iterdir()):
                shard.rmdir()
        return removed + len(legacy)

    def _clear_database(self) -> int:
        if _size(self.database) and not _database_is_ours(self.database):
            raise CacheError(f"refusing to delete {self.database}: not brief's database")
        self.close()
        self._unusable = None  # look afresh: a fault met during a run does not decide what clearing does
        try:
            db = self._open(create=False)
            if db is not None:
                with self._lock:
                    removed: int = db.execute("DELETE FROM entries").rowcount
                    with contextlib.suppress(sqlite3.OperationalError):  # in use elsewhere: space is reused anyway
                        db.executescript("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
                return removed
            if not self._unusable:
                return 0  # an empty file another process is about to claim
        except (OSError, sqlite3.Error) as exc:
            if _is_busy(exc):
                raise CacheError(f"cannot clear {self.database}: it is in use ({_reason(exc)})") from exc
        self.close()  # damaged, yet its header proves it is brief's: remove its files
        for suffix in ("", "-wal", "-shm", "-journal"):
            (self.directory / (DATABASE_NAME + suffix)).unlink(missing_ok=True)
        self._unusable = None
        return 0

    def _open(self, create: bool) -> sqlite3.Connection | None:
        """The connection, opened on first use; None when the cache is off or (reading) not there yet."""
        if self._db is not None or self._unusable:
            return self._db
        if not create and not self.database.exists():
            return None
        if create:
            self._make_directory()
        try:
            db = _connect(self.database, create)
        except _NotOurs as exc:
            self._disable(str(exc))
            return None
        with self._lock:
            if self._db is None:
                self._db = db
            elif db is not None:
                db.close()
        return self._db

    def _make_directory(self) -> None:
        """Create the directory if needed; tag it only when brief created it, never a folder it found."""
        if self.directory.is_dir():
            return
        existing = next(path for path in (self.directory, *self.directory.parents) if path.exists())
        if not existing.is_dir():  # mkdir would only say "File exists"
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is not a directory")
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # else another brief process created it a moment ago
            self.directory.mkdir()
            (self.directory / TAG_NAME).write_bytes(TAG_TEXT)

    def _disable(self, reason: str) -> None:
        if self._unusable is None:
            self._unusable = reason
            log.warning("cache database %s is unusable (%s): going on without the cache", self.database, reason)

    def _checkpoint(self) -> None:
        """Fold the WAL into the database on a connection of its own, so no put waits for the fsync."""
        try:
            db = sqlite3.connect(self.database, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            try:
                if db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1] > _WAL_MAX_FRAMES:
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                db.close()
        except sqlite3.Error as exc:  # the next one catches up; the puts are durable already
            log.debug("cache checkpoint skipped: %s", exc)
        finally:
            self._checkpointing.release()


def _connect(path: Path, create: bool) -> sqlite3.Connection | None:
    """Open brief's database, claiming an empty file when `create`; None for an empty file otherwise."""
    if _size(path) and not _database_is_ours(path):
        raise _NotOurs("not brief's database: left untouched")
    db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    try:
        if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            if not create:
                db.close()
                return None
            _claim(db)
        # Checkpoints run in a background thread; the last statement checks the table is there and readable.
        db.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;")
        db.execute("SELECT 1 FROM entries LIMIT 1").fetchall()
    except BaseException:
        db.close()
        raise
    return db


def _claim(db: sqlite3.Connection) -> None:
    """Mark and shape an empty file in one transaction, before WAL mode, so that the header on disk
    carries brief's application_id from the first commit on (clear() relies on it)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:  # not claimed meanwhile
            if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise _NotOurs("an SQLite database of another program: left untouched")
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {_FORMAT}")
            db.execute(_SCHEMA)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _verified(key: str, blob: Any, stored_checksum: Any, row_format: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The row's value, or None and what is wrong with it."""
    if row_format != _FORMAT:
        return None, f"unknown format {row_format!r}"
    if not isinstance(blob, bytes) or stored_checksum != checksum(key, blob):
        return None, "checksum mismatch"
    try:
        value = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, "not JSON"
    return (value, None) if isinstance(value, dict) else (None, "not an object")


def _database_is_ours(path: Path) -> bool:
    """The file's SQLite header carries brief's application_id (readable even when the rest is damaged)."""
    header = _head(path, 100)
    return header.startswith(b"SQLite format 3\x00") and int.from_bytes(header[68:72], "big") == APPLICATION_ID


def _legacy_files(directory: Path) -> tuple[list[Path], list[Path]]:
    """Old-layout entries and temporaries, each proven brief's by its place, name and first bytes."""
    entries: list[Path] = []
    temporaries: list[Path] = []
    for shard in sorted(directory.iterdir()):
        if not (re.fullmatch(r"[0-9a-f]{2}", shard.name) and _is_plain(shard, stat.S_ISDIR)):
            continue
        for path in sorted(shard.iterdir()):
            name = _LEGACY_ENTRY.fullmatch(path.name)
            if name and name[1] == shard.name and _is_plain(path) and _is_legacy_entry(path):
                entries.append(path)
            elif _LEGACY_TEMP.fullmatch(path.name) and _is_plain(path):
                head = _head(path, len(_LEGACY_HEAD) + 2)  # a temporary holds a cut-short entry, or nothing
                if head in (b"", _LEGACY_HEAD + shard.name.encode()):
                    temporaries.append(path)
    return entries, temporaries


def _is_legacy_entry(path: Path) -> bool:
    """Begins as the old writer began it (whole or cut short), or parses with its key and format 1."""
    if _head(path, len(_LEGACY_HEAD) + 65) == _LEGACY_HEAD + path.stem.encode() + b'"':
        return True
    try:
        entry = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(entry, dict) and entry.get("key") == path.stem and entry.get("format") == 1


def _head(path: Path, size: int) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def _is_plain(path: Path, kind: Any = stat.S_ISREG) -> bool:
    """A real file (or directory), not a symlink to somewhere else."""
    try:
        return bool(kind(path.lstat().st_mode))
    except OSError:
        return False


def _size(path: Path) -> int:
    with contextlib.suppress(OSError):
        return path.stat().st_size
    return 0


def _is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _BUSY


def _is_damage(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    return isinstance(exc, _NotOurs) or (isinstance(exc, sqlite3.DatabaseError) and code in _DAMAGED)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc) or type(exc).__name__
