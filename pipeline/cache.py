"""On-disk cache of validated model results, content-addressed, safe for concurrent processes.

One JSON file per entry under a two-character shard. Each write goes to a temporary file in the
same folder and is renamed into place, so a reader sees the old state or the whole new entry,
never half of one, even if the writer is killed. Each entry carries a checksum of its value: an
entry that fails to parse or to verify is a miss, counted and reported, never a crash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import CacheError

log = logging.getLogger(__name__)
_FORMAT = 1


@dataclass(frozen=True)
class CacheStats:
    path: Path
    entries: int
    bytes: int
    corrupt: int


def cache_key(parts: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines a reply."""
    canonical = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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


def _checksum(value: Any) -> str:
    return cache_key({"value": value})


class Cache:
    """A directory of entries keyed by content hash."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.corrupt_reads = 0  # entries found unreadable during this run

    def path_for(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None when absent or unreadable (then counted as corrupt)."""
        path = self.path_for(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._corrupt(path, exc.strerror or "unreadable")
            return None
        value = _verified_value(raw, key)
        if value is None:
            self._corrupt(path, "truncated or damaged")
        return value

    def _corrupt(self, path: Path, reason: str) -> None:
        self.corrupt_reads += 1
        log.warning("cache entry %s is %s: treated as a miss", path.name, reason)
        return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store atomically: write a temporary file beside the entry, then rename it into place."""
        path = self.path_for(key)
        entry = json.dumps(
            {"format": _FORMAT, "key": key, "checksum": _checksum(value), "value": value}, ensure_ascii=False
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(entry)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise CacheError(f"cannot write to cache {self.directory}: {exc.strerror or exc}") from exc

    def entries(self) -> list[Path]:
        return sorted(self.directory.glob("??/*.json")) if self.directory.is_dir() else []

    def stats(self) -> CacheStats:
        """Count entries and bytes, verifying each entry."""
        entries = self.entries()
        corrupt = sum(1 for path in entries if _verified_value(_read(path), path.stem) is None)
        return CacheStats(self.directory, len(entries), sum(p.stat().st_size for p in entries), corrupt)

    def clear(self) -> int:
        """Delete every entry (and stray temporary files); return how many entries went."""
        removed = 0
        if not self.directory.is_dir():
            return 0
        for shard in self.directory.iterdir():
            if not (shard.is_dir() and len(shard.name) == 2):
                continue
            for path in shard.iterdir():
                if path.suffix in (".json", ".part"):
                    path.unlink(missing_ok=True)
                    removed += path.suffix == ".json"
            if not any(shard.iterdir()):
                shard.rmdir()
        return removed


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _verified_value(raw: bytes, key: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("value"), dict):
        return None
    if entry.get("checksum") != _checksum(entry["value"]):
        return None
    value: dict[str, Any] = entry["value"]
    return value
