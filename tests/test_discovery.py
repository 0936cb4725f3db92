"""Discovery of a local OpenAI-compatible server, against real loopback servers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.model.discovery import CANDIDATES, Found, choose_model, discover, parse_models


class _Models(BaseHTTPRequestHandler):
    """Answer GET <path> with the server's scripted status and body, after its delay."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server = self.server
        server.paths.append(self.path)  # type: ignore[attr-defined]
        time.sleep(server.delay)  # type: ignore[attr-defined]
        body = server.body  # type: ignore[attr-defined]
        self.send_response(server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the prober gave up first, as it should with a hanging server

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def models_server(
    models: list[str] | None = None,
    status: int = 200,
    body: bytes | None = None,
    delay: float = 0.0,
) -> Iterator[ThreadingHTTPServer]:
    """A loopback server on a free port whose /models reply is scripted."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    server.daemon_threads = True
    server.paths = []  # type: ignore[attr-defined]
    server.delay = delay  # type: ignore[attr-defined]
    server.status = status  # type: ignore[attr-defined]
    payload = {"object": "list", "data": [{"id": m, "object": "model"} for m in models or []]}
    server.body = body if body is not None else json.dumps(payload).encode()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def port_of(server: ThreadingHTTPServer) -> int:
    return server.server_address[1]


def closed_port() -> int:
    """A port nothing listens on: bind to get a free one, then close it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_default_candidates_are_the_usual_local_servers() -> None:
    assert [(name, port) for name, port, _ in CANDIDATES] == [
        ("vLLM", 8000),
        ("llama.cpp", 8080),
        ("Ollama", 11434),
        ("LM Studio", 1234),
    ]
    assert all(path == "/v1" for _, _, path in CANDIDATES)


def test_finds_the_one_server_that_listens() -> None:
    with models_server(["qwen2.5:7b", "llama3"]) as server:
        candidates = [("vLLM", closed_port(), "/v1"), ("Ollama", port_of(server), "/v1")]
        found = discover(candidates)
    assert found == Found("Ollama", f"http://127.0.0.1:{port_of(server)}/v1", ["qwen2.5:7b", "llama3"])
    assert server.paths == ["/v1/models"]  # type: ignore[attr-defined]


def test_none_when_nothing_listens_and_quickly() -> None:
    started = time.perf_counter()
    assert discover([("vLLM", closed_port(), "/v1"), ("llama.cpp", closed_port(), "/v1")]) is None
    assert time.perf_counter() - started < 1.0
    assert discover([]) is None


def test_candidate_order_beats_speed() -> None:
    with (
        models_server(["slow-first"], delay=0.1) as first,
        models_server(["fast-second"]) as second,
    ):
        found = discover([("vLLM", port_of(first), "/v1"), ("llama.cpp", port_of(second), "/v1")], timeout=1.0)
    assert found is not None and found.name == "vLLM" and found.models == ["slow-first"]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"<html>not an API</html>"),
        (200, b'{"models": ["x"]}'),
        (200, b'{"data": []}'),  # a server with nothing loaded cannot summarise anything
        (200, b'{"data": [{"name": "no id"}]}'),
        (404, b'{"error": "not found"}'),
        (500, b'{"data": [{"id": "broken"}]}'),
    ],
)
def test_servers_that_do_not_list_models_are_skipped(status: int, body: bytes) -> None:
    with models_server(status=status, body=body) as odd, models_server(["good"]) as good:
        found = discover([("vLLM", port_of(odd), "/v1"), ("LM Studio", port_of(good), "/v1")])
    assert found is not None and found.name == "LM Studio"


def test_a_hanging_server_costs_one_timeout_in_total() -> None:
    with models_server(["late"], delay=1.0) as slow, models_server(["late"], delay=1.0) as slow2:
        started = time.perf_counter()
        found = discover([("vLLM", port_of(slow), "/v1"), ("Ollama", port_of(slow2), "/v1")], timeout=0.2)
        elapsed = time.perf_counter() - started
    assert found is None
    assert elapsed < 0.8  # the probes run side by side, not one after the other


def test_environment_proxies_are_not_used_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with models_server(["m"]) as server:
        found = discover([("vLLM", port_of(server), "/v1")])
    assert found is not None


def test_choose_model() -> None:
    found = Found("Ollama", "http://127.0.0.1:11434/v1", ["first", "second"])
    assert choose_model(found, None) == "first"
    assert choose_model(found, "second") == "second"
    assert choose_model(found, "not-listed") == "not-listed"  # the user's choice is theirs


def test_parse_models() -> None:
    assert parse_models(b'{"object": "list", "data": [{"id": "a"}, {"id": "b"}]}') == ["a", "b"]
    assert parse_models(b'[{"id": "a"}]') is None
    assert parse_models(b"\xff") is None
