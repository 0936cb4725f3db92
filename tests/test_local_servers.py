"""Local models on a CPU: streamed replies timed by progress, loops cut, schema-ignoring servers, discovery waits."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import Settings
from pipeline.errors import EndpointUnavailable, OutputTruncated, RetriesExhausted
from pipeline.model.backends import Deadlines
from pipeline.model.backends.openai_http import OpenAIHTTPBackend, is_looping
from pipeline.model.client import JsonRequest, ModelClient
from pipeline.model.discovery import discover
from pipeline.model.endpoint import endpoint_kind, profile_for
from tests.fakeserver import FakeOpenAI
from tests.responders import prompt_kind

ROOT = Path(__file__).resolve().parent.parent

SCHEMA = {
    "type": "object",
    "required": ["title", "summary"],
    "properties": {"title": {"type": "string"}, "summary": {"type": "string"}},
}
GOOD = {"title": "Local", "summary": "A summary."}


def request() -> JsonRequest:
    messages = [{"role": "system", "content": "Summarise."}, {"role": "user", "content": "文章"}]
    return JsonRequest("t.v1", "h", messages, "t", SCHEMA, max_tokens=400, temperature=0.0)


def run(server: FakeOpenAI, **changes: Any) -> tuple[Any, ModelClient]:
    values: dict[str, Any] = {"base_url": server.base_url, "model": "m", "base_url_origin": "flag", "max_attempts": 2}
    values.update(changes)
    client = ModelClient.for_settings(Settings(**values), None, sleep=_no_sleep)

    async def go() -> Any:
        try:
            return await client.complete_json(request())
        finally:
            await client.aclose()

    return asyncio.run(go()), client


async def _no_sleep(_: float) -> None:
    return None


def test_replies_are_streamed_and_usage_comes_from_the_last_piece() -> None:
    with FakeOpenAI(responder=lambda body: json.dumps(GOOD)) as server:
        result, _ = run(server)
        (body,) = server.bodies()
    assert result.data == GOOD and result.usage.completion_tokens > 0
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["repeat_penalty"] == 1.1  # a local server gets the knob that curbs loops


def test_a_stream_that_stops_is_cut_by_the_idle_limit_not_the_total() -> None:
    with FakeOpenAI(responder=lambda body: json.dumps(GOOD), script=["stall"], hang_seconds=30) as server:
        started = time.monotonic()
        result, client = run(server, idle_timeout=0.5, timeout=60)
        elapsed = time.monotonic() - started
    assert result.data == GOOD and client.stats.retries == 1
    assert elapsed < 10  # half a second of silence, then the retry; not the 60 s total


def test_a_slow_first_token_is_bounded_by_its_own_limit() -> None:
    with FakeOpenAI(responder=lambda body: json.dumps(GOOD), script=["slowfirst"] * 5, hang_seconds=30) as server:
        started = time.monotonic()
        with pytest.raises(RetriesExhausted, match="first token"):
            run(server, first_token_timeout=0.4, timeout=60)
        assert time.monotonic() - started < 10


def test_a_looping_reply_is_cut_early_and_not_retried_with_a_bigger_budget() -> None:
    with FakeOpenAI(responder=lambda body: json.dumps(GOOD), script=["loop", "loop"]) as server:
        with pytest.raises(OutputTruncated):
            run(server)
        bodies = server.bodies()
    assert len(bodies) == 1  # a loop gains nothing from a second try with twice the tokens


def test_loop_detector() -> None:
    assert is_looping('{"summary": "' + "the measures " * 12)
    assert not is_looping("The government announced three measures on Monday, and the market rose.")
    assert not is_looping("=" * 200)  # a rule line is not a loop of words


def test_a_server_refusing_a_sampling_knob_loses_it_and_the_run_goes_on() -> None:
    def picky(body: dict[str, Any]) -> str:
        return json.dumps(GOOD)

    with FakeOpenAI(responder=picky) as server:
        server.reject_fields = ["repeat_penalty"]
        result, _ = run(server)
        bodies = server.bodies()
    assert result.data == GOOD
    assert "repeat_penalty" in bodies[0] and "repeat_penalty" not in bodies[-1]


def test_endpoint_kinds_choose_their_deadlines() -> None:
    assert endpoint_kind("http://127.0.0.1:8080/v1") == "local"
    assert endpoint_kind("http://192.168.1.20:8000/v1") == "local"
    assert endpoint_kind("https://api.openai.com/v1") == "hosted"
    local = profile_for(Settings(base_url="http://127.0.0.1:8080/v1"))
    hosted = profile_for(Settings(base_url="https://dashscope.aliyuncs.com/compatible-mode/v1"))
    assert local.deadlines.total >= 600 and hosted.deadlines.total <= 300
    assert "repeat_penalty" in local.extra_body and not hosted.extra_body
    assert profile_for(Settings(base_url="http://127.0.0.1:1/v1", timeout=5)).deadlines.first_token <= 5
    assert local.deadlines.queued and not hosted.deadlines.queued  # a queue counts as progress only locally


def test_discovery_waits_for_a_loading_server_and_says_so() -> None:
    said: list[str] = []
    with FakeOpenAI(models_loading=2) as server:
        found = discover([("llama.cpp", server.port, "/v1")], wait=10, notify=said.append, sleep=lambda s: None)
    assert found is not None and found.models == ["fake-qwen"]
    assert said and "loading" in said[0]


def test_discovery_never_falls_back_to_offline_while_a_server_answers() -> None:
    with FakeOpenAI(models_loading=1000) as server:
        with pytest.raises(EndpointUnavailable, match="loading"):
            discover([("llama.cpp", server.port, "/v1")], wait=0.2, sleep=lambda s: time.sleep(0.05))


def test_retries_and_timeouts_are_logged_at_verbose(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with FakeOpenAI(responder=lambda body: json.dumps(GOOD), script=["500"]) as server:
        run(server)
    assert "retrying in" in caplog.text and "HTTP 500" in caplog.text


def test_a_stream_without_usage_gets_estimated_token_counts() -> None:
    with FakeOpenAI(responder=lambda body: json.dumps(GOOD)) as server:
        server.stream_usage = False  # llama-cpp-python's server sends no usage chunk
        result, client = run(server)
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert client.stats.prompt_tokens == result.usage.prompt_tokens


def test_a_request_queued_behind_streaming_replies_is_not_timed_out() -> None:
    # One reply at a time, each ~1 s: the third request's first token comes after ~2 s, far past
    # the 0.6 s first-token limit, yet the server was never idle, so nothing is retried.
    with FakeOpenAI(responder=lambda body: json.dumps(GOOD)) as server:
        server.cpu_pace = 0.1
        client = ModelClient.for_settings(
            Settings(base_url=server.base_url, model="m", first_token_timeout=0.6, idle_timeout=0.5, concurrency=3),
            None,
            sleep=_no_sleep,
        )

        async def go() -> list[Any]:
            try:
                return await asyncio.gather(*(client.complete_json(request()) for _ in range(3)))
            finally:
                await client.aclose()

        started = time.monotonic()
        results = asyncio.run(go())
        elapsed = time.monotonic() - started
    assert [r.data for r in results] == [GOOD] * 3
    assert client.stats.retries == 0 and client.stats.requests == 3
    assert elapsed > 2.5  # they really queued


def test_a_hosted_api_times_the_first_token_from_the_request() -> None:
    # The same queue against deadlines that do not count a queue as progress: the last request gives up.
    with FakeOpenAI(responder=lambda body: json.dumps(GOOD)) as server:
        server.cpu_pace = 0.1
        backend = OpenAIHTTPBackend(server.base_url, None, Deadlines(total=30, first_token=1.5, idle=0.5))
        body = {"model": "m", "messages": request().messages, "max_tokens": 50}

        async def go() -> list[Any]:
            try:
                return await asyncio.gather(*(backend.send(body) for _ in range(3)), return_exceptions=True)
            finally:
                await backend.aclose()

        outcomes = asyncio.run(go())
    failed = [o for o in outcomes if isinstance(o, Exception)]
    assert len(failed) == 1 and "first token" in str(failed[0])


def test_a_chunk_too_long_for_the_model_context_is_split_not_failed(tmp_path: Path, monkeypatch) -> None:
    # A server with a small context (llama.cpp's 400 "exceeds the available context size"): the
    # article is summarised in halves and merged, and the run succeeds.
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "BRIEF_")):
            monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty.toml").touch()
    monkeypatch.setenv("BRIEF_CONFIG", str(tmp_path / "empty.toml"))
    article = ROOT / "seeds" / "003_5cb4fd5a6fe695d5.txt"
    limit = 2600  # characters of prompt: the whole article (~2,900) does not fit, its halves do
    with FakeOpenAI() as server:
        server.max_prompt_chars = limit
        result = CliRunner().invoke(
            app,
            [
                "summarize",
                str(article),
                "--base-url",
                server.base_url,
                "--model",
                "fake-qwen",
                "--out",
                str(tmp_path / "out"),
                "--no-cache",
            ],
        )
        sizes = [sum(len(m["content"]) for m in body["messages"]) for body in server.bodies()]
        done = [prompt_kind(body) for body in server.completed_bodies()]
    assert result.exit_code == 0, result.output
    assert any(size > limit for size in sizes)  # it was refused once...
    assert done.count("map") >= 2 and "reduce" in done  # ...then summarised in parts and merged
    written = json.loads((tmp_path / "out" / "003_5cb4fd5a6fe695d5.json").read_text(encoding="utf-8"))
    assert written["summary"] and len(written["key_points"]) >= 3
