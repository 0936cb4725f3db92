"""The job manifest: atomic writes, no credentials, and a clear error for a damaged or hostile job.json."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pipeline.batchjob import BatchJobError, prepare
from pipeline.batchjob.manifest import load, new_manifest, redact_endpoint, save
from tests.test_batch_toy import ToyEngine


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:secret@api.example.com/v1/?api-key=sk-1#x", "https://api.example.com/v1"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("https://dashscope.aliyuncs.com/compatible-mode/v1/", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
        ("http://[::1]:30000/v1", "http://[::1]:30000/v1"),
    ],
)
def test_endpoints_are_stored_without_credentials(url: str, expected: str) -> None:
    assert redact_endpoint(url) == expected


def test_save_is_atomic_and_round_trips(tmp_path: Path) -> None:
    job = new_manifest(url="/v1/chat/completions", completion_window="24h", max_lines=5, max_bytes=99, max_attempts=2)
    save(tmp_path, job)
    (tmp_path / "job.json").write_text("{}")  # the next save replaces it whole
    save(tmp_path, job)
    assert load(tmp_path) == job
    assert [p.name for p in tmp_path.iterdir()] == ["job.json"]


def test_prepare_writes_the_documented_schema(tmp_path: Path) -> None:
    asyncio.run(prepare(ToyEngine(tmp_path, [2]), tmp_path / "job", max_lines=1))
    job = json.loads((tmp_path / "job" / "job.json").read_text())
    assert set(job) == {
        "version",
        "job_id",
        "created_at",
        "endpoint",
        "url",
        "completion_window",
        "max_lines",
        "max_bytes",
        "max_attempts",
        "models",
        "stages",
        "rounds",
        "failures",
        "finished",
        "exit_code",
    }
    [rnd] = job["rounds"]
    assert (rnd["number"], rnd["state"], [f["name"] for f in rnd["files"]]) == (
        1,
        "prepared",
        ["requests-map-001.jsonl", "requests-map-002.jsonl"],
    )
    assert job["stages"]["map"]["requests"] == 2 and rnd["files"][0]["file_id"] is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda job: "{not json",
        lambda job: json.dumps([]),
        lambda job: json.dumps({**job, "rounds": [{"number": 1, "state": "exploded"}]}),
        lambda job: json.dumps({**job, "version": 99}),
        lambda job: json.dumps(
            {
                **job,
                "rounds": [
                    {"number": 1, "files": [{"name": "../../etc/passwd", "stage": "map", "lines": 1, "bytes": 1}]}
                ],
            }
        ),
    ],
)
def test_a_damaged_or_hostile_manifest_is_a_clear_error(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(prepare(ToyEngine(tmp_path, [1]), tmp_path / "job"))
    path = tmp_path / "job" / "job.json"
    path.write_text(damage(json.loads(path.read_text())))
    with pytest.raises(BatchJobError, match="job.json") as raised:
        load(tmp_path / "job")
    assert "\n" not in str(raised.value)
