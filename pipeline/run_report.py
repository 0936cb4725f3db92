"""The run's report: one row per input (run.json's "inputs") and the totals, written as run.json.

A run over 100,000 inputs would hold 100,000 rows to the end. Here a row stays in memory while its
input is processed (the runner fills it in) and a while after, then, once more than `spill_after`
rows are held, each finished row goes to an unnamed temporary file (pipeline/spill.py) and memory
keeps its offset (8 bytes) and what the totals need (counts by status, usage summed as rows leave).
run.json is written piece by piece, a row at a time, so it is never held whole either.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from pipeline.jsonbytes import indented
from pipeline.records import InputReport, Usage
from pipeline.spill import UNREADABLE, SpillFile
from pipeline.terminal import one_line

SPILL_AFTER = 2000  # rows held before finished ones go to the spill file (a few hundred KB of them)
_FINE = ("ok", "duplicate")  # the statuses that do not fail a run
_HELD = -1  # the offset of a row still in memory
# Only scalars come before "inputs" in run.json, and a string's quotes are escaped: this is the key.
_PLACEHOLDER = '"inputs"'


class RunRows:
    """run.json's rows in input order. `add` a row, fill it in, then say it is `done`: from then on it is final."""

    def __init__(self, *, spill_after: int | None = None) -> None:
        self.spill_after = SPILL_AFTER if spill_after is None else spill_after
        self._held: dict[int, InputReport] = {}
        self._offsets = array("q")  # by position: the row's offset in the spill file, or _HELD
        self._spill: SpillFile | None = None
        self._gone: Counter[str] = Counter()  # statuses of the spilled rows
        self._gone_usage = Usage()

    def add(self, row: InputReport) -> int:
        """Keep a new row; its position (for `done`)."""
        self._offsets.append(_HELD)
        position = len(self._offsets) - 1
        self._held[position] = row
        return position

    def done(self, position: int) -> None:
        """The row at `position` will not change; it leaves memory when more than spill_after rows are held."""
        if len(self._held) <= self.spill_after or position not in self._held:
            return
        row = self._held[position]
        try:
            if self._spill is None:
                self._spill = SpillFile(prefix="brief-rows-")
            self._offsets[position] = self._spill.append(row.to_json())
        except OSError:
            return  # the disk is full or failing: the row stays in memory, nothing is lost
        del self._held[position]
        self._gone[row.status] += 1
        self._gone_usage += row.usage

    def __len__(self) -> int:
        return len(self._offsets)

    def __iter__(self) -> Iterator[InputReport]:
        """Every row in input order (spilled ones read back: a change to those is not kept)."""
        for position, offset in enumerate(self._offsets):
            yield self._held[position] if offset == _HELD else self._read(position, offset)

    def _read(self, position: int, offset: int) -> InputReport:
        try:
            assert self._spill is not None  # an offset was given by it
            return InputReport.from_json(self._spill.read(offset))
        except UNREADABLE as err:
            error = one_line(f"this row could not be read back from brief's temporary file ({err})")
            return InputReport(f"(input {position + 1})", "unreadable", error)

    def statuses(self) -> Counter[str]:
        """How many rows have each status."""
        return self._gone + Counter(row.status for row in self._held.values())

    def usage(self) -> Usage:
        return sum((row.usage for row in self._held.values()), self._gone_usage)

    def interrupted(self) -> None:
        """Mark the rows still pending as interrupted (only held rows can be pending)."""
        for row in self._held.values():
            if row.status == "pending":
                row.status = "interrupted"

    def close(self) -> None:
        """Drop the spill file (else it goes with this object); counts and usage still answer, spilled rows do not."""
        if self._spill is not None:
            self._spill.close()


@dataclass
class RunReport:
    """The whole run: per-input rows and totals for run.json (the results themselves go to a ResultStore)."""

    mode: str
    model: str | None
    endpoint: str | None
    inputs: RunRows = field(default_factory=RunRows)
    documents: int = 0  # results kept (stories of inputs that succeeded, and of partly failed ones)
    dropped_terms: int = 0
    briefing_usage: Usage = field(default_factory=Usage)
    briefing_error: str | None = None
    fatal_error: str | None = None  # an error that stopped the run (a rejected key, say)
    fatal_exit_code: int = 0
    interrupted: bool = False
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    elapsed_s: float = 0.0
    glossary_conflicts: list[dict[str, Any]] = field(default_factory=list)
    client_stats: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)  # faithfulness flags by kind (see pipeline.checks)

    @property
    def failed(self) -> list[InputReport]:
        """The rows of inputs that did not end well, in input order."""
        return [row for row in self.inputs if row.status not in _FINE]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.fatal_error:
            return self.fatal_exit_code or EXIT_FAILED
        statuses = self.inputs.statuses()
        return EXIT_FAILED if any(count for status, count in statuses.items() if status not in _FINE) else EXIT_OK

    def usage(self) -> Usage:
        return self.inputs.usage() + self.briefing_usage

    def totals(self) -> dict[str, Any]:
        usage = self.usage()
        if "requests" in self.client_stats:  # what went over the wire, failed inputs' attempts included
            stats = self.client_stats
            usage = Usage(stats["requests"], usage.cache_hits, stats["prompt_tokens"], stats["completion_tokens"])
        statuses = self.inputs.statuses()
        return {
            "inputs": len(self.inputs),
            "ok": statuses["ok"],
            "failed": statuses["failed"],
            "documents": self.documents,
            **usage.to_json(),
            "dropped_terms": self.dropped_terms,
            "elapsed_s": round(self.elapsed_s, 3),
        }

    def to_manifest(self) -> dict[str, Any]:
        """run.json as one object (every row held at once: manifest_pieces() writes it without that)."""
        manifest = self._manifest()
        manifest["inputs"] = [row.to_json() for row in self.inputs]
        return manifest

    def manifest_pieces(self) -> Iterator[str]:
        """run.json's text, a row at a time: the same bytes as indented(to_manifest()) + a newline."""
        head, tail = indented(self._manifest()).split(f"{_PLACEHOLDER}: []", 1)
        yield f"{head}{_PLACEHOLDER}: ["
        separator = "\n    "
        for row in self.inputs:
            yield separator + indented(row.to_json()).replace("\n", "\n    ")
            separator = ",\n    "
        yield ("]" if separator == "\n    " else "\n  ]") + tail + "\n"

    def _manifest(self) -> dict[str, Any]:
        manifest = {
            "mode": self.mode,
            "model": self.model,
            "endpoint": self.endpoint,
            "started": self.started,
            "interrupted": self.interrupted,
            "inputs": [],  # the rows: to_manifest() and manifest_pieces() fill them in
            "briefing_error": self.briefing_error,
            "glossary_conflicts": self.glossary_conflicts,
            "client": self.client_stats,
            "checks": self.checks,
            "totals": self.totals(),
        }
        if self.fatal_error:
            manifest["error"] = self.fatal_error
        return manifest
