"""The SDK's aiohttp transport carries brief's requests; httpx above it keeps redirects and the key's reach."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

from pipeline.model.backends import Deadlines
from pipeline.model.backends.openai_http import OpenAIHTTPBackend
from tests.fakeserver import FakeOpenAI

REPLY = {"title": "T", "summary": "S."}
DEADLINES = Deadlines(total=10, first_token=10, idle=10)
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


def send_twice(backend: OpenAIHTTPBackend) -> tuple[Any, list[Any]]:
    """A plain and a streamed request through `backend`; the SDK client it used and the replies."""

    async def go() -> tuple[Any, list[Any]]:
        try:
            plain = await backend.send(BODY)
            backend.stream = True
            streamed = await backend.send(BODY)
            return (await backend.ready())._client, [plain, streamed]
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_requests_go_through_the_aiohttp_transport() -> None:
    with FakeOpenAI(responder=lambda body: json.dumps(REPLY)) as server:
        backend = OpenAIHTTPBackend(server.base_url, "sk-test", DEADLINES, stream=False)
        client, replies = send_twice(backend)
        assert len(server.bodies()) == 2
        sent = [value for h in server.headers() for name, value in h.items() if name.lower() == "authorization"]
    assert sent == ["Bearer sk-test"] * 2  # what the redirect test below must not see
    assert isinstance(client, openai.DefaultAioHttpClient)
    assert [json.loads(r.content) for r in replies] == [REPLY, REPLY]
    assert all(r.prompt_tokens > 0 for r in replies)


def test_without_aiohttp_the_sdks_default_transport_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    class Missing:
        def __init__(self, **kwargs: Any) -> None:
            raise RuntimeError("To use the aiohttp client you must have installed the package with the `aiohttp` extra")

    monkeypatch.setattr(openai, "DefaultAioHttpClient", Missing)
    with FakeOpenAI(responder=lambda body: json.dumps(REPLY)) as server:
        backend = OpenAIHTTPBackend(server.base_url, None, DEADLINES, stream=False)
        client, replies = send_twice(backend)
    assert type(client).__module__.startswith("openai")  # the SDK's own httpx client
    assert [json.loads(r.content) for r in replies] == [REPLY, REPLY]


@contextmanager
def redirecting_to(target: str) -> Iterator[str]:
    """A server on another port (another origin) answering every request with a 307 to `target`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(307)
            self.send_header("Location", target + self.path.removeprefix("/v1"))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_redirect_to_another_origin_does_not_carry_the_key() -> None:
    with FakeOpenAI(responder=lambda body: json.dumps(REPLY)) as server, redirecting_to(server.base_url) as named:
        backend = OpenAIHTTPBackend(named, "sk-secret-123", DEADLINES, stream=False)
        _, replies = send_twice(backend)
        headers = server.headers()
    assert [json.loads(r.content) for r in replies] == [REPLY, REPLY]  # the redirect was followed
    assert len(headers) == 2
    assert not any("sk-secret-123" in value for h in headers for value in h.values())
    assert not any(name.lower() == "authorization" for h in headers for name in h)
