"""Finished articles spilled to `JOB/results.jsonl`: appended as they finish, streamed back in id order.

The run's end (glossary harmonised over every article, the briefing, the sinks) needs every
result; held as objects that is several KB per article. Spilled, memory keeps one (id, offset)
pair per article, and each result is read back when it is needed. A line that no longer reads
(a damaged file, a disk error) is recorded in `errors` and skipped: never a crash.

Not wired yet: `Runner` keeps results in `RunReport.results` (see the report of issue #16 for
the seam it needs: a result store it appends to and streams back from).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pipeline.batchjob.jsonl import one_line
from pipeline.records import ArticleResult

RESULTS = "results.jsonl"
_MAX_ERRORS = 20  # a file damaged throughout says so in a few lines, with the count


class ResultSpill:
    """An append-only file of ArticleResult records, and the offset of each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._out: IO[bytes] = path.open("wb")  # a new run starts a new spill
        self._in: IO[bytes] | None = None
        self._index: dict[str, int] = {}  # id → offset of its line: ~100 bytes an article
        self.damaged = 0
        self.errors: list[str] = []

    def add(self, result: ArticleResult) -> None:
        """Append a finished article (ids are unique in a run: a second one replaces the first)."""
        self._index[result.id] = self._out.tell()
        line = json.dumps(result.to_json(), ensure_ascii=False, separators=(",", ":"))
        self._out.write(line.encode("utf-8") + b"\n")

    def __len__(self) -> int:
        return len(self._index)

    def ids(self) -> list[str]:
        return sorted(self._index)

    def __iter__(self) -> Iterator[ArticleResult]:
        """Every readable result, in id order (as the run's end sorts them)."""
        for doc_id in self.ids():
            result = self._read(doc_id, self._index[doc_id])
            if result is not None:
                yield result

    def get(self, doc_id: str) -> ArticleResult | None:
        """One result by id (a briefing section), or None."""
        offset = self._index.get(doc_id)
        return self._read(doc_id, offset) if offset is not None else None

    def _read(self, doc_id: str, offset: int) -> ArticleResult | None:
        self._out.flush()
        if self._in is None:
            self._in = self.path.open("rb")
        try:
            self._in.seek(offset)
            raw = self._in.readline()
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or data.get("id") != doc_id:
                raise ValueError("not the record written here")
            return ArticleResult.from_json(data)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as err:
            self.damaged += 1
            if len(self.errors) < _MAX_ERRORS:
                self.errors.append(one_line(f"{self.path.name}: the result of {doc_id} cannot be read back ({err})"))
            return None

    def close(self) -> None:
        self._out.close()
        if self._in is not None:
            self._in.close()
