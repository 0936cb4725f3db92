"""Batch jobs against the fake Files + Batches API, driven by the real openai client."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tenacity import wait_exponential

from pipeline.batchjob import BatchJobError, NotReady, cancel, collect, failed_requests, prepare, run, submit
from tests.fakebatch import FakeBatchAPI, Sleeps, failing, make_client
from tests.test_batch_toy import ToyEngine

CHUNKS = [1, 2, 3]  # articles: one single-chunk, two multi-chunk → 6 maps, 2 reduces, 1 briefing
BRIEFING = "ans(ans(a0c0) | ans(a1:ans(a1c0)+ans(a1c1)) | ans(a2:ans(a2c0)+ans(a2c1)+ans(a2c2)))"


def manifest(job: Path) -> dict[str, Any]:
    return json.loads((job / "job.json").read_text())


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def go(api: FakeBatchAPI, root: Path, **options: Any) -> tuple[int, ToyEngine, Sleeps]:
    engine, sleeps = ToyEngine(root, CHUNKS), Sleeps()
    code = asyncio.run(run(root / "job", make_client(api), engine, sleep=sleeps, **options))
    return code, engine, sleeps


def test_run_goes_through_every_stage_and_records_the_job(tmp_path: Path) -> None:
    with FakeBatchAPI() as api:
        code, engine, _ = go(api, tmp_path)
    assert code == 0
    assert json.loads((tmp_path / "out" / "briefing.json").read_text()) == {"briefing": BRIEFING}
    assert set(engine.calls.values()) == {1} and len(engine.calls) == 9  # each request accepted exactly once
    assert [name.split("-", 1)[1] for name in api.uploads] == [
        "requests-map.jsonl",
        "requests-reduce.jsonl",
        "requests-briefing.jsonl",
    ]
    assert {(b["endpoint"], b["completion_window"]) for b in api.created()} == {("/v1/chat/completions", "24h")}
    job = manifest(tmp_path / "job")
    assert job["endpoint"] == api.base_url and job["models"] == ["toy-1"]
    assert job["finished"] is True and job["exit_code"] == 0
    assert [r["state"] for r in job["rounds"]] == ["closed"] * 3
    assert {stage: counts["accepted"] for stage, counts in job["stages"].items()} == {
        "map": 6,
        "reduce": 2,
        "briefing": 1,
    }
    first = job["rounds"][0]["files"][0]
    assert first["file_id"] in api.files and first["batch_id"] in api.batches and first["status"] == "completed"
    for path in (tmp_path / "job").iterdir():  # no credential anywhere in the job folder
        assert b"sk-test-secret-key" not in path.read_bytes()


def test_a_failing_line_is_retried_in_a_smaller_follow_up_batch(tmp_path: Path) -> None:
    with FakeBatchAPI(responder=failing(["a1c1"])) as api:
        code, engine, _ = go(api, tmp_path)
    assert code == 0 and set(engine.calls.values()) == {1}
    job = manifest(tmp_path / "job")
    second = {f["name"]: f["lines"] for f in job["rounds"][1]["files"]}
    assert second == {"requests-map-retry1.jsonl": 1, "requests-reduce.jsonl": 1}
    [retried] = lines_of(tmp_path / "job" / "requests-map-retry1.jsonl")
    assert retried["body"]["messages"][-1]["content"] == "a1c1"
    assert job["stages"]["map"] | {"est_prompt_tokens": 0} == {
        "requests": 6,
        "sent": 7,
        "accepted": 6,
        "requeued": 1,
        "live": 0,
        "failed": 0,
        "est_prompt_tokens": 0,
        "max_output_tokens": 7 * 64,
        "prompt_tokens": 6 * 10,  # the usage of each accepted line (the fake reports 10 + 5); the failed one costs none
        "completion_tokens": 6 * 5,
    }
    assert job["failures"] == {}  # the retry succeeded: nothing left on record


def test_live_fallback_sends_only_the_failed_lines(tmp_path: Path) -> None:
    with FakeBatchAPI(responder=failing(["a2c0"], times=None)) as api:
        code, engine, _ = go(api, tmp_path, live_fallback=True)
    assert code == 0
    assert [engine.known[key].body["messages"][-1]["content"] for key in engine.live_sent] == ["a2c0"]
    assert len(api.uploads) == 3  # no follow-up batch
    assert manifest(tmp_path / "job")["stages"]["map"]["live"] == 1


def test_a_request_that_keeps_failing_ends_recorded_with_its_reason(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    with FakeBatchAPI(responder=failing(["a0c0"], times=None, status=400)) as api:
        asyncio.run(prepare(ToyEngine(tmp_path, CHUNKS), job_dir, max_attempts=2))
        code, engine, _ = go(api, tmp_path)
    assert code == 1  # the briefing needs a0c0: finish() reports the run incomplete
    [(key, reason)] = failed_requests(job_dir).items()
    assert engine.known[key].body["messages"][-1]["content"] == "a0c0"
    assert reason == "HTTP 400: could not answer a0c0"
    sent = [line for path in job_dir.glob("requests-map*.jsonl") for line in lines_of(path) if line["custom_id"] == key]
    assert len(sent) == 2  # max_attempts
    job = manifest(job_dir)
    assert job["failures"][key]["final"] is True and job["failures"][key]["attempts"] == 2
    assert job["stages"]["reduce"]["accepted"] == 2 and job["stages"]["map"]["failed"] == 1


def test_a_live_fallback_refusal_is_final(tmp_path: Path) -> None:
    engine = ToyEngine(tmp_path, CHUNKS)
    engine.live_fails.add("a0c0")
    with FakeBatchAPI(responder=failing(["a0c0"], times=None)) as api:
        code = asyncio.run(run(tmp_path / "job", make_client(api), engine, sleep=Sleeps(), live_fallback=True))
    assert code == 1
    [reason] = failed_requests(tmp_path / "job").values()
    assert reason == "HTTP 500: could not answer a0c0; live: live endpoint refused it"


def test_failed_and_expired_batches_are_followed_up(tmp_path: Path) -> None:
    with FakeBatchAPI(outcomes=["failed", "expired"], partial=2) as api:
        code, engine, _ = go(api, tmp_path)
    assert code == 0 and set(engine.calls.values()) == {1}
    rounds = manifest(tmp_path / "job")["rounds"]
    failed = rounds[0]["files"][0]
    assert failed["status"] == "failed" and failed["batch_errors"] == ["invalid_request: The batch failed validation."]
    assert rounds[0]["requeued"] == 6
    assert rounds[1]["files"][0]["status"] == "expired" and (rounds[1]["accepted"], rounds[1]["requeued"]) == (2, 4)


def test_junk_in_output_files_is_counted(tmp_path: Path) -> None:
    with FakeBatchAPI(junk=[b"<html>502</html>", b'{"custom_id": null}']) as api:
        code, _, _ = go(api, tmp_path)
    assert code == 0
    assert [r["junk"] for r in manifest(tmp_path / "job")["rounds"]] == [2, 2, 2]


def test_polling_backs_off_with_the_given_wait_strategy(tmp_path: Path) -> None:
    with FakeBatchAPI(polls_per_status=3) as api:
        code, _, sleeps = go(api, tmp_path, poll=wait_exponential(multiplier=1, max=4))
    assert code == 0
    # each round: 3 statuses × 3 polls = 9 checks, 8 waits between them; waits grow 1, 2, 4, stay at the
    # cap, and start over with the next round
    per_round = [1, 2, 4, 4, 4, 4, 4, 4]
    assert sleeps.calls == per_round * 3


def test_transient_faults_are_retried(tmp_path: Path) -> None:
    faults = [("POST", "/v1/files", 500), ("GET", "/v1/batches/", 503), ("POST", "/v1/batches", 429)]
    with FakeBatchAPI(faults=faults) as api:
        code, _, sleeps = go(api, tmp_path, poll=wait_exponential(multiplier=0.001))
    assert code == 0 and api.faults == [] and len(api.uploads) == 3 and len(api.batches) == 3
    assert len([s for s in sleeps.calls if s >= 1]) == 3  # one backoff per fault (polls wait ~0)


@pytest.mark.parametrize(("status", "hint"), [(404, "brief batch import"), (401, "OPENAI_API_KEY")])
def test_refusals_say_what_to_fix(tmp_path: Path, status: int, hint: str) -> None:
    with FakeBatchAPI(faults=[("POST", "/v1/files", status)]) as api:
        asyncio.run(prepare(ToyEngine(tmp_path, CHUNKS), tmp_path / "job"))
        with pytest.raises(BatchJobError, match=hint) as raised:
            asyncio.run(submit(tmp_path / "job", make_client(api), sleep=Sleeps()))
    assert f"HTTP {status}" in str(raised.value) and "\n" not in str(raised.value)


def test_steps_one_by_one_upload_once_and_wait_for_the_batches(tmp_path: Path) -> None:
    job_dir, engine = tmp_path / "job", ToyEngine(tmp_path, CHUNKS)
    with FakeBatchAPI(polls_per_status=100) as api:
        client = make_client(api)
        asyncio.run(prepare(engine, job_dir))
        asyncio.run(submit(job_dir, client))
        asyncio.run(submit(job_dir, client))
        assert len(api.uploads) == 1 and len(api.batches) == 1
        with pytest.raises(NotReady):
            asyncio.run(collect(job_dir, client, engine))
        with FakeBatchAPI() as other, pytest.raises(BatchJobError, match="batches live at"):
            asyncio.run(submit(job_dir, make_client(other)))
        status = asyncio.run(cancel(job_dir, client))
        assert [f.status for f in status.files] == ["cancelling"]
        api.polls_per_status = 1
        code = asyncio.run(run(job_dir, client, engine, sleep=Sleeps()))
    assert code == 0 and set(engine.calls.values()) == {1}
    assert manifest(job_dir)["rounds"][0]["files"][0]["status"] == "cancelled"


def test_prepare_reports_requests_and_tokens_per_stage(tmp_path: Path) -> None:
    engine = ToyEngine(tmp_path, CHUNKS)
    summary = asyncio.run(prepare(engine, tmp_path / "job"))
    assert summary.new and summary.round == 1 and summary.requests == 6
    [stage] = summary.stages
    assert (stage.stage, stage.est_prompt_tokens, stage.max_output_tokens) == ("map", 6 * (4 // 4 + 5), 6 * 64)
    assert "  map: 6 requests, ~36 prompt tokens, ≤384 completion tokens, 1 file(s): requests-map.jsonl" in (
        summary.lines()
    )
    again = asyncio.run(prepare(engine, tmp_path / "job"))
    assert (
        not again.new
        and again.round == 1
        and sorted(p.name for p in (tmp_path / "job").iterdir())
        == [
            "job.json",
            "requests-map.jsonl",
        ]
    )


def test_requests_already_cached_are_not_written(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    engine = ToyEngine(tmp_path, CHUNKS, calls=calls)
    with FakeBatchAPI() as api:
        asyncio.run(run(tmp_path / "job", make_client(api), engine, sleep=Sleeps()))
        summary = asyncio.run(prepare(ToyEngine(tmp_path, CHUNKS + [1]), tmp_path / "job2"))
    assert summary.requests == 1  # only the new article's map


def test_polling_gives_up_after_max_wait_and_resumes_later(tmp_path: Path) -> None:
    engine = ToyEngine(tmp_path, CHUNKS)
    with FakeBatchAPI(polls_per_status=10**6) as api:
        with pytest.raises(NotReady, match="still running"):
            asyncio.run(run(tmp_path / "job", make_client(api), engine, sleep=Sleeps(), max_wait=0))
        api.polls_per_status = 1
        assert asyncio.run(run(tmp_path / "job", make_client(api), engine, sleep=Sleeps())) == 0
    assert len(api.uploads) == 3


class Interrupted(BaseException):
    pass


def test_without_list_endpoints_a_crash_right_after_upload_uploads_again(tmp_path: Path) -> None:
    def crash(label: str) -> None:
        if label == "upload:done":
            raise Interrupted

    engine = ToyEngine(tmp_path, CHUNKS)
    with FakeBatchAPI(listing=False) as api:  # like SGLang ≤ 0.4.7: no GET /v1/files, no GET /v1/batches
        with pytest.raises(Interrupted):
            asyncio.run(run(tmp_path / "job", make_client(api), engine, sleep=Sleeps(), checkpoint=crash))
        assert asyncio.run(run(tmp_path / "job", make_client(api), engine, sleep=Sleeps())) == 0
    assert len(api.uploads) == 4 and len(set(api.uploads)) == 3  # the one unrecorded upload is sent again
    assert set(engine.calls.values()) == {1}
