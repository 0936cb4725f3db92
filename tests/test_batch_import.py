"""Results made elsewhere (`vllm run-batch`, old SGLang) imported into a job: any order, in parts, junk and all."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from pipeline.batchjob import BatchJobError, CollectReport, JobStatus, import_results, prepare
from pipeline.batchjob.manifest import load
from tests.fakebatch import Responder, failing, toy_responder, write_results
from tests.test_batch_toy import ToyEngine

CHUNKS = [1, 2, 3]
BRIEFING = "ans(ans(a0c0) | ans(a1:ans(a1c0)+ans(a1c1)) | ans(a2:ans(a2c0)+ans(a2c1)+ans(a2c2)))"


def ids(path: Path) -> list[str]:
    found = [json.loads(line).get("custom_id") for line in path.read_bytes().splitlines() if line.startswith(b"{")]
    return [key for key in found if isinstance(key, str)]


def open_files(job_dir: Path) -> list[str]:
    job = json.loads((job_dir / "job.json").read_text())
    return [f["name"] for f in job["rounds"][-1]["files"]] if job["rounds"][-1]["state"] != "closed" else []


def import_until_done(job_dir: Path, engine: ToyEngine, responder: Responder = toy_responder) -> CollectReport:
    """What a user does with a GPU box: run-batch every open request file, import each result, until finished."""
    for _ in range(10):
        for name in open_files(job_dir):
            out = job_dir.parent / f"out-{name}"
            write_results(job_dir / name, out, responder, shape="vllm")
            report = asyncio.run(import_results(job_dir, out, engine))
            if report.exit_code is not None:
                return report
    raise AssertionError("the job did not finish")


def test_vllm_results_out_of_order_with_a_failed_line_and_junk(tmp_path: Path) -> None:
    job_dir, calls = tmp_path / "job", Counter[str]()
    engine = ToyEngine(tmp_path, CHUNKS, calls=calls)
    asyncio.run(prepare(engine, job_dir))
    results = tmp_path / "results.jsonl"
    junk = [b"INFO 06-20 run_batch.py:412] Reading batch", b'{"custom_id": ["x"]}']
    write_results(job_dir / "requests-map.jsonl", results, failing(["a2c1"]), shape="vllm", seed=3, junk=junk)
    assert ids(results) != ids(job_dir / "requests-map.jsonl")  # really out of order
    assert sorted(ids(results)) == sorted(ids(job_dir / "requests-map.jsonl"))
    report = asyncio.run(import_results(job_dir, results, engine))
    assert (report.lines_read, report.accepted, report.failed_lines, report.junk) == (8, 5, 1, 2)
    assert report.closed is not None and report.closed.requeued == 1
    assert report.next is not None and report.next.round == 2
    assert {s.stage: (s.requests, s.files) for s in report.next.stages} == {
        "map": (1, ["requests-map-retry1.jsonl"]),
        "reduce": (1, ["requests-reduce.jsonl"]),  # article 1 has all its maps already
    }
    final = import_until_done(job_dir, ToyEngine(tmp_path, CHUNKS, calls=calls))
    assert final.exit_code == 0 and set(calls.values()) == {1} and len(calls) == 9
    assert json.loads((tmp_path / "out" / "briefing.json").read_text()) == {"briefing": BRIEFING}


def test_a_results_file_in_parts_and_twice(tmp_path: Path) -> None:
    job_dir, engine = tmp_path / "job", ToyEngine(tmp_path, CHUNKS)
    asyncio.run(prepare(engine, job_dir))
    whole = tmp_path / "whole.jsonl"
    write_results(job_dir / "requests-map.jsonl", whole, seed=None)
    lines = whole.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(lines[:4]))
    second.write_bytes(b"".join(lines[4:]))
    report = asyncio.run(import_results(job_dir, first, engine))
    assert (report.accepted, report.unresolved, report.closed) == (4, 2, None)
    assert report.lines()[-1] == "  2 requests still have no result: import the rest"
    again = asyncio.run(import_results(job_dir, first, engine))
    assert (again.accepted, again.unexpected, again.unresolved) == (0, 4, 2)  # nothing accepted twice
    summary = asyncio.run(prepare(engine, job_dir))
    assert not summary.new and summary.round == 1  # the round stays open until every request has a line
    done = asyncio.run(import_results(job_dir, second, engine))
    assert done.accepted == 2 and done.closed is not None and done.next is not None and done.next.round == 2
    assert set(engine.calls.values()) == {1} and len(engine.calls) == 6


def test_old_sglang_results_are_read_too(tmp_path: Path) -> None:
    job_dir, engine = tmp_path / "job", ToyEngine(tmp_path, CHUNKS)
    asyncio.run(prepare(engine, job_dir))
    results = tmp_path / "sglang.jsonl"
    write_results(job_dir / "requests-map.jsonl", results, shape="sglang")
    assert isinstance(json.loads(results.read_bytes().splitlines()[0])["response"]["body"]["choices"], dict)
    report = asyncio.run(import_results(job_dir, results, engine))
    assert report.accepted == 6 and report.failed_lines == 0


def test_import_with_live_fallback(tmp_path: Path) -> None:
    job_dir, engine = tmp_path / "job", ToyEngine(tmp_path, CHUNKS)
    asyncio.run(prepare(engine, job_dir))
    results = tmp_path / "r.jsonl"
    write_results(job_dir / "requests-map.jsonl", results, failing(["a0c0", "a1c1"], times=None))
    report = asyncio.run(import_results(job_dir, results, engine, live_fallback=True))
    assert report.closed is not None and report.closed.live == 2 and len(engine.live_sent) == 2
    assert report.next is not None and {s.stage for s in report.next.stages} == {"reduce"}


def test_a_reply_the_engine_rejects_is_a_failed_line(tmp_path: Path) -> None:
    job_dir, engine = tmp_path / "job", ToyEngine(tmp_path, CHUNKS)
    asyncio.run(prepare(engine, job_dir))
    results = tmp_path / "r.jsonl"
    write_results(job_dir / "requests-map.jsonl", results, lambda body: '{"echo": "someone else"}')
    report = asyncio.run(import_results(job_dir, results, engine))
    assert report.failed_lines == 6 and report.closed is not None and report.closed.requeued == 6
    reasons = {f["reason"] for f in json.loads((job_dir / "job.json").read_text())["failures"].values()}
    assert reasons == {"rejected: reply does not answer this request"}


def test_missing_results_file_and_missing_job_are_clear_errors(tmp_path: Path) -> None:
    engine = ToyEngine(tmp_path, CHUNKS)
    with pytest.raises(BatchJobError, match="no Batch job here"):
        asyncio.run(import_results(tmp_path / "nojob", tmp_path / "r.jsonl", engine))
    asyncio.run(prepare(engine, tmp_path / "job"))
    with pytest.raises(BatchJobError, match="no such results file"):
        asyncio.run(import_results(tmp_path / "job", tmp_path / "r.jsonl", engine))


def test_tokens_are_the_usage_each_accepted_reply_reports(tmp_path: Path) -> None:
    job_dir, engine = tmp_path / "job", ToyEngine(tmp_path, CHUNKS)
    asyncio.run(prepare(engine, job_dir))
    results = tmp_path / "r.jsonl"
    write_results(job_dir / "requests-map.jsonl", results, failing(["a2c2"], times=None))
    lines = [json.loads(raw) for raw in results.read_bytes().splitlines()]
    garbled = [{"prompt_tokens": "12", "completion_tokens": -3}, {"prompt_tokens": True}, None]
    expected = [0, 0]
    for index, line in enumerate(lines):
        body = line["response"]["body"]
        if body is None:
            continue  # the failed line: it costs nothing here
        if index < len(garbled):
            body["usage"] = garbled[index]  # read as 0, never a crash
            continue
        body["usage"] = {"prompt_tokens": 100 * index, "completion_tokens": index}
        expected = [expected[0] + 100 * index, expected[1] + index]
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = asyncio.run(import_results(job_dir, results, engine))
    assert (report.accepted, report.failed_lines) == (5, 1)
    stages = json.loads((job_dir / "job.json").read_text())["stages"]
    assert [stages["map"]["prompt_tokens"], stages["map"]["completion_tokens"]] == expected
    shown = JobStatus(round=None, state="idle", stages=load(job_dir).stages).lines()
    assert f"  map: 6 requests, 5 accepted, 0 live, 0 failed for good; {expected[0]:,} prompt + {expected[1]:,} " in (
        "\n".join(shown)
    )


def test_live_fallback_tokens_are_counted_with_the_batch_ones(tmp_path: Path) -> None:
    job_dir, engine = tmp_path / "job", ToyEngine(tmp_path, CHUNKS)
    asyncio.run(prepare(engine, job_dir))
    results = tmp_path / "r.jsonl"
    write_results(job_dir / "requests-map.jsonl", results, failing(["a0c0"], times=None))
    asyncio.run(import_results(job_dir, results, engine, live_fallback=True))
    counts = json.loads((job_dir / "job.json").read_text())["stages"]["map"]
    # five lines from the batch (the fake reports 10 + 5 each), one live (the toy engine reports 7 + 3)
    assert (counts["live"], counts["prompt_tokens"], counts["completion_tokens"]) == (1, 5 * 10 + 7, 5 * 5 + 3)
