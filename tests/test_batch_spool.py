"""Pending requests spooled to disk: only ids and request shapes in memory, bodies read back as written."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.batchjob.engine import BatchRequest, StageIndex, stages_of
from pipeline.batchjob.jsonl import RequestWriter, iter_request_ids, request_line
from pipeline.batchjob.pipeline_engine import JobInputs, PipelineEngine, create_job
from pipeline.batchjob.spool import RequestSpool
from pipeline.config import load_settings
from pipeline.model.client import JsonRequest
from tests.test_batch_e2e import SEEDS

SCHEMA = {"type": "object"}


def request(prompt: str, text: str, max_tokens: int = 100) -> JsonRequest:
    messages = [{"role": "system", "content": prompt}, {"role": "user", "content": text}]
    return JsonRequest(f"{prompt}.v1", "h", messages, prompt, SCHEMA, max_tokens, 0.0)


def describe(req: JsonRequest) -> tuple[str, dict[str, Any], int]:
    return req.prompt_id.partition(".")[0], {"model": "m", "messages": req.messages}, len(req.messages[1]["content"])


def spooled(tmp_path: Path, keep: tuple[str, ...] = ()) -> RequestSpool:
    spool = RequestSpool(tmp_path, describe, keep)
    spool.setdefault("k1", request("map", "一"))
    spool.setdefault("k2", request("map", "二二"))
    spool.setdefault("k1", request("map", "一"))  # the same request met twice in one run: written once
    spool["k3"] = request("briefing", "三三三", max_tokens=500)
    return spool


def test_requests_are_written_out_and_only_their_shapes_kept(tmp_path: Path) -> None:
    spool = spooled(tmp_path, keep=("k2",))
    assert len(spool) == 0 and set(spool.kept) == {"k2"} and spool.kept["k2"].messages[1]["content"] == "二二"
    pending = spool.close()
    assert isinstance(pending, StageIndex) and dict(pending.stages()) == {"k1": "map", "k2": "map", "k3": "briefing"}
    assert [(r.custom_id, r.stage, r.body["messages"][1]["content"], r.est_prompt_tokens) for r in pending] == [
        ("k1", "map", "一", 1),
        ("k2", "map", "二二", 2),
        ("k3", "briefing", "三三三", 3),
    ]
    first, second, third = (pending.request(key) for key in ("k1", "k2", "k3"))
    assert first is second and first is not None and first.messages == []  # one shape per prompt, no text
    assert third is not None and (third.prompt_id, third.max_tokens, third.messages) == ("briefing.v1", 500, [])
    assert pending.request("unknown") is None
    pending.close()
    assert list(tmp_path.iterdir()) == []  # the spool is an anonymous temporary file


def test_the_listing_can_be_read_twice_at_once_and_filtered(tmp_path: Path) -> None:
    pending = spooled(tmp_path).close()
    pairs = [(a.custom_id, b.custom_id) for a, b in zip(pending, pending, strict=True)]
    assert pairs == [("k1", "k1"), ("k2", "k2"), ("k3", "k3")]
    without_briefing = pending.without(stages=("briefing",))
    assert [r.custom_id for r in without_briefing] == ["k1", "k2"] and list(without_briefing.stages()) == ["k1", "k2"]
    assert [r.custom_id for r in pending.without(answered=("k2",))] == ["k1", "k3"]
    view = pending.without(stages=("briefing",), answered=("k1",)).stages()  # a view, not a copy
    assert len(view) == 1 and "k2" in view and "k1" not in view and "k3" not in view and "k9" not in view
    assert view.get("k3") is None and view["k2"] == "map" and dict(view.items()) == {"k2": "map"}
    assert len(pending) == 3 and pending.stages()["k3"] == "briefing"  # the listing it came from is unchanged
    assert stages_of(pending.without(stages=("map",))) == {"k3": "briefing"}
    assert stages_of([BatchRequest("x", "map", {}, 0)]) == {"x": "map"}  # a plain list is read through
    pending.close()


def test_request_ids_are_read_without_decoding_bodies_and_odd_ids_still_right(tmp_path: Path) -> None:
    ids = ["a" * 64, 'quote"inside', "back\\slash", "控制\x01char", "plain-ü"]
    lines = [request_line(BatchRequest(key, "map", {"messages": [{"content": '"custom_id":"no"'}]}, 0)) for key in ids]
    path = tmp_path / "requests-map.jsonl"
    path.write_bytes(b"".join(lines) + b"\n")
    assert list(iter_request_ids(path)) == ids


def test_an_aborted_writer_leaves_no_file(tmp_path: Path) -> None:
    writer = RequestWriter(tmp_path, "requests-map", url="/v1/chat/completions", max_lines=1, max_bytes=10_000)
    for n in range(3):
        assert writer.add(BatchRequest(f"k{n}", "map", {"n": n}, 1))
    assert not writer.add(BatchRequest("k0", "map", {"n": 0}, 1))  # a duplicate id
    writer.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PipelineEngine:
    (tmp_path / "config.toml").touch()
    monkeypatch.setenv("BRIEF_CONFIG", str(tmp_path / "config.toml"))
    news = tmp_path / "news"
    news.mkdir()
    for name in ("000_35dc785b65d2bec5.txt", "002_e506a97cba6d166a.txt"):
        (news / name).write_bytes((SEEDS / name).read_bytes())
    # Nothing listens at the endpoint: a named model and a deferred run need no server.
    flags = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "cache_dir": tmp_path / "cache"}
    settings = load_settings({**flags, "max_chunk_tokens": 300})
    inputs = JobInputs.of(settings, [str(news)], tmp_path, tmp_path / "job" / "out")
    create_job(tmp_path / "job", inputs)
    return PipelineEngine(tmp_path / "job", inputs, load_settings(inputs.flags()))


def test_the_pipeline_listing_is_the_request_file_and_holds_no_text(engine: PipelineEngine) -> None:
    from pipeline.batchjob import prepare

    try:
        asyncio.run(prepare(engine, engine.job_dir))
        pending = asyncio.run(engine.pending())
        assert isinstance(pending, StageIndex) and len(pending.stages()) > 2
        written = [json.loads(raw) for raw in (engine.job_dir / "requests-map.jsonl").read_bytes().splitlines()]
        assert [(line["custom_id"], line["body"]) for line in written] == [(r.custom_id, r.body) for r in pending]
        for key in pending.stages():
            shape = engine._listing.request(key) if engine._listing is not None else None
            assert shape is not None and shape.messages == [] and shape.prompt_id.startswith("map.")
        assert engine.accept(written[0]["custom_id"], {"choices": []}) is not None  # validated, not a crash
        names = sorted(path.name for path in engine.job_dir.iterdir())
        assert names == ["inputs.json", "job.json", "requests-map.jsonl"]  # the spool leaves no file
    finally:
        engine.close()
