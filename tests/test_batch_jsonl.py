"""Batch JSONL files: request files split at the line and byte limits, result lines of every shape, junk counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.batchjob.engine import BatchRequest
from pipeline.batchjob.jsonl import ParseStats, iter_results, one_line, parse_result, request_line, write_requests
from tests.fakebatch import answer_line, toy_responder


def req(n: int, stage: str = "map", pad: int = 0) -> BatchRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": f"text {n} " + "x" * pad}], "max_tokens": 50}
    return BatchRequest(f"key{n:04d}", stage, body, est_prompt_tokens=10)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_request_lines_have_the_batch_shape(tmp_path: Path) -> None:
    report = write_requests([req(1), req(2)], tmp_path, "requests-map")
    assert [f.name for f in report.files] == ["requests-map.jsonl"]
    lines = read_lines(tmp_path / "requests-map.jsonl")
    assert lines[0] == {"custom_id": "key0001", "method": "POST", "url": "/v1/chat/completions", "body": req(1).body}
    assert report.files[0].est_prompt_tokens == 20 and report.files[0].max_output_tokens == 100


def test_split_at_the_line_limit(tmp_path: Path) -> None:
    report = write_requests((req(n) for n in range(7)), tmp_path, "requests-map", max_lines=3)
    names = [f.name for f in report.files]
    assert names == ["requests-map-001.jsonl", "requests-map-002.jsonl", "requests-map-003.jsonl"]
    assert [len(read_lines(tmp_path / name)) for name in names] == [3, 3, 1]
    ids = [line["custom_id"] for name in names for line in read_lines(tmp_path / name)]
    assert ids == [f"key{n:04d}" for n in range(7)]
    assert not list(tmp_path.glob(".*"))  # no temporary part file left behind


def test_split_at_the_byte_limit(tmp_path: Path) -> None:
    size = len(request_line(req(0)))
    report = write_requests([req(n) for n in range(5)], tmp_path, "requests-reduce", max_bytes=2 * size + 1)
    assert [f.lines for f in report.files] == [2, 2, 1]
    for written in report.files:
        assert (tmp_path / written.name).stat().st_size == written.bytes <= 2 * size + 1


def test_a_request_larger_than_a_file_is_reported_not_written(tmp_path: Path) -> None:
    small = len(request_line(req(1)))
    report = write_requests([req(1), req(2, pad=500), req(3)], tmp_path, "requests-map", max_bytes=small + 10)
    assert report.oversize == ["key0002"]
    written = [line["custom_id"] for f in report.files for line in read_lines(tmp_path / f.name)]
    assert written == ["key0001", "key0003"]


def test_duplicate_custom_ids_are_written_once(tmp_path: Path) -> None:
    report = write_requests([req(1), req(1), req(2)], tmp_path, "requests-map")
    assert report.duplicates == 1 and report.files[0].lines == 2


def test_non_ascii_is_written_as_utf8(tmp_path: Path) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "通義千問"}]}
    write_requests([BatchRequest("k", "map", body, 3)], tmp_path, "requests-map")
    assert "通義千問".encode() in (tmp_path / "requests-map.jsonl").read_bytes()


REQUEST = {"custom_id": "abc", "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}


@pytest.mark.parametrize("shape", ["openai", "vllm", "sglang"])
def test_success_lines_of_every_shape_give_an_openai_completion(shape: str) -> None:
    parsed = parse_result(answer_line(REQUEST, toy_responder, shape))
    assert not isinstance(parsed, str) and parsed.error is None and parsed.body is not None
    assert parsed.custom_id == "abc"
    assert json.loads(parsed.body["choices"][0]["message"]["content"])["echo"] == "hi"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (  # OpenAI error file: a non-200 response whose body carries the error
            {"custom_id": "a", "response": {"status_code": 429, "body": {"error": {"message": "slow down"}}}},
            "HTTP 429: slow down",
        ),
        (  # OpenAI expired batch: no response, error object
            {"custom_id": "a", "response": None, "error": {"code": "batch_expired", "message": "not run"}},
            "batch_expired: not run",
        ),
        (  # vllm run-batch make_error_request_output: status 400, error is a string
            {"custom_id": "a", "response": {"status_code": 400, "request_id": "r", "body": None}, "error": "bad model"},
            "HTTP 400: bad model",
        ),
        (  # vllm ErrorResponse dumped as the error
            {"custom_id": "a", "response": {"status_code": 404}, "error": {"error": {"message": "no", "code": 404}}},
            "404: no",
        ),
        ({"custom_id": "a", "response": None, "error": None}, "no response"),  # old SGLang whole-batch failure
        ({"custom_id": "a", "response": {"status_code": 200, "body": "text"}, "error": None}, "empty response body"),
    ],
)
def test_error_lines_become_one_line_reasons(line: dict, expected: str) -> None:
    parsed = parse_result(line)
    assert not isinstance(parsed, str) and parsed.body is None
    assert parsed.error == expected


def test_junk_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    good = json.dumps(answer_line(REQUEST, toy_responder, "vllm"))
    junk = ["not json {", "[1, 2]", '{"no_custom_id": true}', '{"custom_id": 7}', "\xff\xfe"]
    path = tmp_path / "results.jsonl"
    path.write_bytes("\n".join([good, *junk, "", good]).encode("utf-8", "surrogateescape") + b"\n\xff\n")
    stats = ParseStats()
    results = list(iter_results(path, stats))
    assert [r.custom_id for r in results] == ["abc", "abc"]
    assert stats.junk == 6 and stats.results == 2 and stats.lines == 8
    assert stats.junk_samples[0] == "results.jsonl line 2: not JSON"
    assert len(stats.junk_samples) == 5


def test_one_line_flattens_and_bounds_untrusted_text() -> None:
    assert one_line("a\nb\x1b[31m\tc") == "a b [31m c"
    assert len(one_line("x" * 1000)) == 300
