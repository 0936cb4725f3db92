"""The run's finished articles: held in memory while few, spilled to an unnamed temporary file when many.

The run's end (glossary harmonised over every article, the names reviewed, the briefing, the
sinks) reads every result, some of them more than once. Held as objects that is several KB per
article; spilled, memory keeps one (id, offset) pair per article and each result is read back
when it is needed (pipeline/spill.py). A line that no longer reads (a disk error) is recorded in
`errors` and skipped: never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pipeline.records import ArticleResult
from pipeline.spill import UNREADABLE, SpillFile
from pipeline.terminal import one_line

# Results kept as objects before the store moves to its spill file (~10 MB of them): most runs never
# touch the disk, and a re-run of 1,000 cached articles does not read each back six times.
SPILL_AFTER = 2000
_MAX_ERRORS = 20  # a file damaged throughout says so in a few lines, with the count


class ResultStore:
    """Finished ArticleResults by id; iterated in id order (as the run's end sorts them), any number of times."""

    def __init__(self, results: Iterable[ArticleResult] = (), *, spill_after: int | None = None) -> None:
        self.spill_after = SPILL_AFTER if spill_after is None else spill_after
        self._held: dict[str, ArticleResult] = {}
        self._file: SpillFile | None = None
        self._offsets: dict[str, int] = {}  # id → offset of its line, once spilled: ~100 bytes an article
        self.damaged = 0
        self.errors: list[str] = []
        for result in results:
            self.add(result)

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def add(self, result: ArticleResult) -> None:
        """Keep a finished article (ids are unique in a run: a second one replaces the first)."""
        if self._file is None:
            self._held[result.id] = result
            if len(self._held) > self.spill_after:
                self._spill()
            return
        self._write(result)

    def _spill(self) -> None:
        self._file = SpillFile(prefix="brief-results-")
        held, self._held = self._held, {}
        for result in held.values():
            self._write(result)

    def _write(self, result: ArticleResult) -> None:
        assert self._file is not None
        self._offsets[result.id] = self._file.append(result.to_json())

    def __len__(self) -> int:
        return len(self._offsets) if self._file is not None else len(self._held)

    def ids(self) -> list[str]:
        return sorted(self._offsets if self._file is not None else self._held)

    def __iter__(self) -> Iterator[ArticleResult]:
        """Every readable result, in id order."""
        for doc_id in self.ids():
            result = self.get(doc_id)
            if result is not None:
                yield result

    def discard(self, doc_id: str) -> None:
        """Forget one result (its spilled line stays in the file, unread)."""
        self._held.pop(doc_id, None)
        self._offsets.pop(doc_id, None)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in (self._offsets if self._file is not None else self._held)

    def get(self, doc_id: str) -> ArticleResult | None:
        """One result by id, or None (unknown, or its line no longer reads)."""
        if self._file is None:
            return self._held.get(doc_id)
        offset = self._offsets.get(doc_id)
        return self._read(doc_id, offset) if offset is not None else None

    def _read(self, doc_id: str, offset: int) -> ArticleResult | None:
        assert self._file is not None
        try:
            data = self._file.read(offset)
            if not isinstance(data, dict) or data.get("id") != doc_id:
                raise ValueError("not the record written here")
            return ArticleResult.from_json(data)
        except UNREADABLE as err:
            self.damaged += 1
            if len(self.errors) < _MAX_ERRORS:
                self.errors.append(one_line(f"the result of {doc_id} cannot be read back from the spill file ({err})"))
            return None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
