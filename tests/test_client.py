"""The model client: the real openai SDK against the fake server, asserting what the server received."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.cache import DATABASE_NAME, Cache
from pipeline.config import Settings
from pipeline.errors import EndpointRejected, InvalidOutput, OutputTruncated, RetriesExhausted
from pipeline.model.client import JsonRequest, ModelClient
from pipeline.model.retry import parse_retry_after
from tests.fakeserver import FakeOpenAI

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "points"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "points": {"type": "array", "items": {"type": "string"}},
    },
}
GOOD = {"title": "Chinese open models overtake US downloads", "points": ["Qwen leads"]}


def answer(body: dict[str, Any]) -> str:
    return json.dumps(GOOD)


def request(text: str = "文章", max_tokens: int = 100, check: Any = None) -> JsonRequest:
    return JsonRequest(
        prompt_id="test.v1",
        prompt_hash="abc",
        messages=[{"role": "system", "content": "Summarise as JSON."}, {"role": "user", "content": text}],
        schema_name="test",
        schema=SCHEMA,
        max_tokens=max_tokens,
        temperature=0.0,
        check=check,
    )


class Waits:
    """Records backoff waits instead of sleeping."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def settings(server: FakeOpenAI, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": server.base_url,
        "model": "fake-qwen",
        "api_key": "sk-test-key-123456",
        "max_attempts": 4,
        "concurrency": 4,
        "timeout": 5.0,
        "base_url_origin": "flag",  # a configured endpoint: the only kind that receives the key
    }
    values.update(changes)
    return Settings(**values)


def call(client: ModelClient, *requests: JsonRequest) -> list[Any]:
    async def run() -> list[Any]:
        try:
            return await asyncio.gather(*(client.complete_json(r) for r in requests))
        finally:
            await client.aclose()

    return asyncio.run(run())


@pytest.fixture()
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=answer) as fake:
        yield fake


def test_reply_is_parsed_validated_and_accounted(server: FakeOpenAI) -> None:
    (result,) = call(ModelClient.for_settings(settings(server), None), request())
    assert result.data == GOOD and not result.cached and result.usage.requests == 1
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    (body,) = server.bodies()
    assert body["model"] == "fake-qwen" and body["max_tokens"] == 100
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert server.headers()[0]["authorization"] == "Bearer sk-test-key-123456"


def test_second_run_is_served_from_cache_and_the_key_never_stored(server: FakeOpenAI, tmp_path: Path) -> None:
    secret = "sk-distinctive-secret-0042"
    first = ModelClient.for_settings(settings(server, api_key=secret), Cache(tmp_path))
    call(first, request("一"), request("二"))
    assert len(server.bodies()) == 2
    again = ModelClient.for_settings(
        settings(server, api_key="sk-another-key-99999"), Cache(tmp_path)
    )  # key not in cache key
    results = call(again, request("一"), request("二"))
    assert len(server.bodies()) == 2
    assert all(r.cached and r.usage.requests == 0 and r.data == GOOD for r in results)
    assert again.stats.cache_hits == 2 and again.stats.requests == 0
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes()


def test_changed_prompt_or_model_misses_the_cache(server: FakeOpenAI, tmp_path: Path) -> None:
    call(ModelClient.for_settings(settings(server), Cache(tmp_path)), request())
    call(ModelClient.for_settings(settings(server, model="other-model"), Cache(tmp_path)), request())
    changed = request()
    changed = JsonRequest(**{**changed.__dict__, "prompt_hash": "def"})
    call(ModelClient.for_settings(settings(server), Cache(tmp_path)), changed)
    assert len(server.bodies()) == 3


def test_429_honours_retry_after_seconds(server: FakeOpenAI) -> None:
    server.script = ["429", "429"]
    server.retry_after = "7"
    waits = Waits()
    client = ModelClient.for_settings(settings(server), None, sleep=waits)
    (result,) = call(client, request())
    assert waits.seconds == [7.0, 7.0]
    assert result.usage.requests == 3 and len(server.bodies()) == 3
    assert client.stats.retries == 2


def test_retry_after_http_date() -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == pytest.approx(30.0)
    assert parse_retry_after("garbage") is None and parse_retry_after("99999") == 120.0


@pytest.mark.parametrize("fault", ["500", "503"])
def test_server_errors_back_off_exponentially_then_give_up(server: FakeOpenAI, fault: str) -> None:
    server.script = [fault] * 10
    waits = Waits()
    client = ModelClient.for_settings(settings(server, max_attempts=4), None, sleep=waits)
    with pytest.raises(RetriesExhausted, match="gave up after 4 attempts"):
        call(client, request())
    assert len(server.bodies()) == 4
    assert len(waits.seconds) == 3
    assert all(0 < w <= 30 for w in waits.seconds)
    assert waits.seconds[2] > waits.seconds[0]  # grows (jitter stays within each step's upper half)


@pytest.mark.parametrize(
    ("fault", "hint"), [("401", "check OPENAI_API_KEY"), ("404", "check --base-url"), ("400", "rejected the request")]
)
def test_client_errors_fail_at_once_saying_what_to_fix(server: FakeOpenAI, fault: str, hint: str) -> None:
    server.script = [fault]
    waits = Waits()
    with pytest.raises(EndpointRejected) as caught:
        call(ModelClient.for_settings(settings(server), None, sleep=waits), request())
    assert str(caught.value).startswith(f"{fault} from {server.base_url}: ")
    assert hint in str(caught.value)
    assert len(server.bodies()) == 1 and waits.seconds == []


@pytest.mark.parametrize("fault", ["malformed", "truncated", "empty", "invalid"])
def test_bad_reply_is_retried_once_with_the_validation_error(server: FakeOpenAI, fault: str) -> None:
    server.script = [fault]
    client = ModelClient.for_settings(settings(server), None)
    (result,) = call(client, request())
    assert result.data == GOOD and result.usage.requests == 2
    first, second = server.bodies()
    correction = second["messages"][-1]["content"]
    assert correction.startswith("That reply was rejected:") and len(second["messages"]) == 4
    assert client.stats.invalid_replies == 1


def test_bad_reply_twice_is_a_recorded_failure(server: FakeOpenAI) -> None:
    server.script = ["invalid", "malformed"]
    client = ModelClient.for_settings(settings(server, json_mode="schema"), None)  # no ladder to step down
    with pytest.raises(InvalidOutput):
        call(client, request())
    assert len(server.bodies()) == 2 and client.stats.failures == 1


def test_content_check_rejects_untranslated_replies(server: FakeOpenAI) -> None:
    replies = iter([json.dumps({"title": "中國開源模型", "points": []}), json.dumps(GOOD)])
    server.responder = lambda body: next(replies)

    def english(data: dict[str, Any]) -> str | None:
        return None if data["title"].isascii() else "title must be English"

    (result,) = call(ModelClient.for_settings(settings(server), None), request(check=english))
    assert result.data == GOOD
    assert "title must be English" in server.bodies()[1]["messages"][-1]["content"]


def test_length_finish_is_never_a_result(server: FakeOpenAI) -> None:
    server.script = ["length"]
    (result,) = call(ModelClient.for_settings(settings(server), None), request(max_tokens=100))
    assert result.data == GOOD
    assert [b["max_tokens"] for b in server.bodies()] == [100, 200]
    server.reset()
    server.script = ["length", "length"]
    with pytest.raises(OutputTruncated):
        call(ModelClient.for_settings(settings(server), None), request(max_tokens=100))


def test_hung_connection_times_out_and_is_retried(server: FakeOpenAI) -> None:
    server.script = ["hang"]
    server.hang_seconds = 3
    waits = Waits()
    (result,) = call(ModelClient.for_settings(settings(server, timeout=0.5), None, sleep=waits), request())
    assert result.data == GOOD and result.usage.requests == 2 and len(waits.seconds) == 1


def test_calls_run_concurrently_up_to_the_bound(server: FakeOpenAI) -> None:
    server.latency = 0.2
    client = ModelClient.for_settings(settings(server, concurrency=5), None)
    results = call(client, *(request(f"文章 {n}") for n in range(15)))
    assert len(results) == 15 and server.peak_in_flight == 5


def test_auto_json_mode_steps_down_once_and_remembers(server: FakeOpenAI) -> None:
    server.reject_schema = True  # llama.cpp's Python server: HTTP 500 for json_schema
    client = ModelClient.for_settings(settings(server), None)

    async def sequential() -> None:
        for n in range(3):
            await client.complete_json(request(f"文章 {n}"))
        await client.aclose()

    asyncio.run(sequential())
    formats = [(b.get("response_format") or {}).get("type") for b in server.bodies()]
    assert formats == ["json_schema", "json_object", "json_object", "json_object"]
    assert server.bodies()[1]["response_format"]["schema"] == SCHEMA
    assert client.json_mode == "object" and client.stats.json_mode == "object"


def test_prompt_mode_when_no_response_format_is_accepted(server: FakeOpenAI) -> None:
    server.reject_schema = server.reject_object = True
    (result,) = call(ModelClient.for_settings(settings(server), None), request())
    assert result.data == GOOD
    last = server.bodies()[-1]
    assert "response_format" not in last and '"required": ["title", "points"]' in last["messages"][0]["content"]


def test_explicit_json_mode_is_not_second_guessed(server: FakeOpenAI) -> None:
    server.reject_schema = True
    with pytest.raises(EndpointRejected, match="--json-mode"):
        call(ModelClient.for_settings(settings(server, json_mode="schema"), None), request())
    assert len(server.bodies()) == 1


def test_corrupt_cache_entry_is_a_counted_miss(server: FakeOpenAI, tmp_path: Path) -> None:
    call(ModelClient.for_settings(settings(server), Cache(tmp_path)), request())
    with sqlite3.connect(tmp_path / DATABASE_NAME) as db:  # damage the one entry's value in place
        db.execute("UPDATE entries SET value = substr(value, 1, 20)")
    client = ModelClient.for_settings(settings(server), Cache(tmp_path))
    (result,) = call(client, request())
    assert not result.cached and len(server.bodies()) == 2
    assert client.stats.corrupt_cache_entries == 1


def test_list_models(server: FakeOpenAI) -> None:
    server.models = ["qwen2.5-7b-instruct", "other"]
    client = ModelClient.for_settings(settings(server), None)

    async def models() -> list[str]:
        try:
            return await client.list_models()
        finally:
            await client.aclose()

    assert asyncio.run(models()) == ["qwen2.5-7b-instruct", "other"]


def test_a_server_that_ignores_json_schema_is_stepped_down_and_remembered(server: FakeOpenAI) -> None:
    server.ignore_schema = True  # 200 for json_schema, but the model writes prose
    client = ModelClient.for_settings(settings(server), None)
    first, second = call(client, request("一"), request("二"))
    assert first.data == GOOD and second.data == GOOD
    assert client.json_mode == "object" and client.stats.json_mode == "object"
    later = [b for b in server.bodies() if b.get("response_format", {}).get("type") == "json_object"]
    assert later and all("JSON Schema" in b["messages"][0]["content"] for b in later)  # the model sees the schema


def test_the_schema_probe_tells_enforcing_from_ignoring_servers() -> None:
    async def probe() -> tuple[bool, str]:
        client = ModelClient.for_settings(settings(server), None)
        try:
            return await client.probe_schema(), client.json_mode
        finally:
            await client.aclose()

    with FakeOpenAI() as server:  # a server that applies the schema it is given
        assert asyncio.run(probe()) == (True, "schema")
        server.ignore_schema = True
        assert asyncio.run(probe()) == (False, "object")


def test_a_request_leaves_no_garbage_for_the_cyclic_collector() -> None:
    """Each request used to leave ~33 objects in reference cycles (an AsyncRetrying's state): the
    collector freed them in 6-8 ms pauses of the event loop. Freed by reference counting now."""
    import gc

    from tests.inprocess import InProcessBackend

    client = ModelClient(InProcessBackend(responder=answer), None, "fake-qwen", concurrency=8)

    async def run() -> int:
        await client.complete_json(request("熱身"))  # one-time setup out of the count
        gc.collect()
        gc.disable()
        try:
            await asyncio.gather(*(client.complete_json(request(f"文章{n}")) for n in range(40)))
            return gc.collect()
        finally:
            gc.enable()

    garbage = asyncio.run(run())
    assert client.stats.requests == 41
    assert garbage < 40  # under one object per request (was 1,440 for these 40)
