"""Fetched pages on disk: body plus validators (ETag, Last-Modified), so a re-run revalidates or works offline.

One entry per canonical URL (credentials never part of it): `<key>.body` and `<key>.json` under a
two-character shard, each written to a temporary file and renamed into place. The JSON carries the
body's sha256; an entry whose body does not match is a miss, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.fsutil import write_atomic
from pipeline.sources.urls import canonical_url, strip_credentials

log = logging.getLogger(__name__)
_FORMAT = 1


@dataclass(frozen=True)
class CachedPage:
    url: str  # as asked (credentials stripped)
    final_url: str  # after redirects
    content_type: str
    charset: str | None
    etag: str | None
    last_modified: str | None
    fetched_at: str
    sha256: str


def _key(url: str) -> str:
    return hashlib.sha256(canonical_url(strip_credentials(url)).encode("utf-8")).hexdigest()


class PageCache:
    """A directory of fetched pages keyed by canonical URL."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = _key(url)
        folder = self.directory / key[:2]
        return folder / f"{key}.json", folder / f"{key}.body"

    def get(self, url: str) -> tuple[CachedPage, bytes] | None:
        """The stored page, or None when absent or damaged."""
        meta_path, body_path = self._paths(url)
        try:
            record = json.loads(meta_path.read_text(encoding="utf-8"))
            body = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.pop("format", None) != _FORMAT:
            return None
        try:
            page = CachedPage(**record)
        except TypeError:
            return None
        if hashlib.sha256(body).hexdigest() != page.sha256:
            log.info("cached copy of %s is damaged; ignoring it", page.url)
            return None
        return page, body

    def put(
        self,
        url: str,
        final_url: str,
        body: bytes,
        *,
        content_type: str,
        charset: str | None,
        etag: str | None,
        last_modified: str | None,
        fetched_at: str,
    ) -> None:
        """Store one page; failures are logged, never raised (the cache only saves work)."""
        page = CachedPage(
            url=strip_credentials(url),
            final_url=strip_credentials(final_url),
            content_type=content_type,
            charset=charset,
            etag=etag,
            last_modified=last_modified,
            fetched_at=fetched_at,
            sha256=hashlib.sha256(body).hexdigest(),
        )
        meta_path, body_path = self._paths(url)
        record = json.dumps({"format": _FORMAT, **asdict(page)}, ensure_ascii=False, indent=1)
        try:
            write_atomic(body_path, body)  # body first: a record never points at a missing body
            write_atomic(meta_path, record.encode("utf-8"))
        except OSError as exc:
            log.warning("cannot cache %s in %s: %s", page.url, self.directory, exc.strerror or exc)
