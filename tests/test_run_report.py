"""run.json's rows: held while few or unfinished, spilled when many, read back identical in input order;
run.json written a row at a time is the same bytes as written whole."""

from __future__ import annotations

import gc
import json
import tempfile
import weakref
from pathlib import Path
from typing import Any

import pytest

import pipeline.spill
from pipeline.errors import EXIT_FAILED, EXIT_OK
from pipeline.jsonbytes import indented
from pipeline.records import InputReport, Usage
from pipeline.run_report import RunReport, RunRows


def row(n: int, status: str = "ok") -> InputReport:
    source = f'news/{n}.txt "quoted" 中文\n"inputs": [] and a tab\t'  # hostile text must not shift the pieces
    error = None if status == "ok" else f"news/{n}.txt: failed, line\u2028two"
    usage = Usage(requests=n, cache_hits=n % 2, prompt_tokens=100 * n, completion_tokens=10 * n)
    return InputReport(source, status, error, [f"{n:03d}_abc", f"{n:03d}_abc#2"][: n % 3], usage, n / 7)


def filled(spill_after: int, statuses: list[str]) -> tuple[RunRows, list[InputReport]]:
    rows = RunRows(spill_after=spill_after)
    made = []
    for n, status in enumerate(statuses):
        item = row(n, status)
        made.append(item)
        rows.done(rows.add(item))
    return rows, made


STATUSES = ["ok", "failed", "ok", "duplicate", "skipped", "ok", "failed"]


@pytest.mark.parametrize("spill_after", [100, 3, 0])
def test_rows_read_back_identical_in_input_order(spill_after: int) -> None:
    rows, made = filled(spill_after, STATUSES)
    back = [item.to_json() for item in rows]
    assert back == [item.to_json() for item in made] and len(rows) == len(STATUSES)
    assert [item.to_json() for item in rows] == back  # read again: the same
    assert rows.statuses() == {"ok": 3, "failed": 2, "duplicate": 1, "skipped": 1}
    assert rows.usage() == Usage(21, 3, 2100, 210)
    rows.close()


def test_a_done_row_leaves_memory_and_an_unfinished_one_stays() -> None:
    rows = RunRows(spill_after=0)
    pending = row(1, "pending")
    rows.add(pending)  # its input is still being processed: never spilled
    finished = row(2)
    gone = weakref.ref(finished)
    rows.done(rows.add(finished))
    del finished
    gc.collect()
    assert gone() is None  # only its line in the spill file is left
    rows.interrupted()
    assert [item.status for item in rows] == ["interrupted", "ok"] and pending.status == "interrupted"
    rows.close()


def test_the_spill_file_has_no_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rows, _ = filled(0, STATUSES)
    assert len(rows) == len(STATUSES) and list(tmp_path.iterdir()) == []
    rows.close()


def test_a_full_disk_keeps_the_row_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(self: Any, data: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline.spill.SpillFile, "append", no_space)
    rows, made = filled(0, STATUSES)
    assert [item.to_json() for item in rows] == [item.to_json() for item in made]
    assert rows.statuses()["failed"] == 2


def test_a_damaged_row_reads_as_unreadable_and_the_totals_hold() -> None:
    rows, made = filled(0, STATUSES)
    handle: Any = rows._spill._file  # type: ignore[union-attr]  # damaged in place (same lengths)
    handle.seek(0)
    lines = handle.read().splitlines(keepends=True)
    lines[1] = b"{\xff".ljust(len(lines[1]) - 1) + b"\n"
    handle.seek(0)
    handle.write(b"".join(lines))
    back = list(rows)
    assert back[1].status == "unreadable" and back[1].source == "(input 2)" and "\n" not in (back[1].error or "")
    assert [item.to_json() for n, item in enumerate(back) if n != 1] == [
        item.to_json() for n, item in enumerate(made) if n != 1
    ]
    assert rows.statuses()["failed"] == 2  # counted when the row left memory
    rows.close()


WIRE = {"requests": 9, "prompt_tokens": 5, "completion_tokens": 2}


def report(spill_after: int, statuses: list[str], **fields: Any) -> RunReport:
    rows, _ = filled(spill_after, statuses)
    made = RunReport("model", "qwen", "http://127.0.0.1:8000/v1", rows, started="2026-11-24T09:00:00+00:00", **fields)
    made.elapsed_s, made.documents = 12.3456, 4
    return made


@pytest.mark.parametrize("spill_after", [100, 0])
@pytest.mark.parametrize(
    ("statuses", "fields"),
    [
        ([], {}),
        (["ok"], {}),
        (STATUSES, {"briefing_error": 'briefing: "inputs": [] \u2028', "checks": {"number": 2}}),
        (STATUSES, {"fatal_error": "the key was rejected", "client_stats": WIRE}),
    ],
)
def test_run_json_a_row_at_a_time_is_the_same_bytes(
    spill_after: int, statuses: list[str], fields: dict[str, Any]
) -> None:
    made = report(spill_after, statuses, **fields)
    whole = indented(made.to_manifest()) + "\n"
    streamed = "".join(made.manifest_pieces())
    assert streamed == whole
    assert json.loads(streamed)["inputs"] == [row(n, s).to_json() for n, s in enumerate(statuses)]


def test_totals_and_exit_code_are_the_same_held_or_spilled() -> None:
    held, spilled = report(100, STATUSES), report(0, STATUSES)
    assert held.totals() == spilled.totals()
    assert held.totals()["inputs"] == 7 and held.totals()["ok"] == 3 and held.totals()["failed"] == 2
    assert held.exit_code == spilled.exit_code == EXIT_FAILED
    assert report(0, ["ok", "duplicate", "ok"]).exit_code == EXIT_OK
    assert [item.status for item in spilled.failed] == ["failed", "skipped", "failed"]
