"""A small OpenAI-compatible server for tests and benchmarks: real HTTP on 127.0.0.1, port 0.

It speaks GET /v1/models and POST /v1/chat/completions, answers with a responder function
(by default the scripted model in tests/responders.py), and can inject latency and faults:
429 with Retry-After, 500, malformed or truncated JSON, finish_reason "length", empty content,
a reply that fails the schema, and a hung connection. It records every request body it received
and which of them it answered in full.

    with FakeOpenAI(latency=0.2, fault_every=5, faults=["429", "hang"]) as server:
        ... server.base_url, server.bodies(), server.completed_bodies(), server.peak_in_flight

As a script (for benchmarks and kill tests in other processes):
    python tests/fakeserver.py --port 0 --latency 0.2 [--log requests.jsonl]
prints "READY <base_url>" once listening; --log appends each completed request body as a JSON line.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `tests.responders` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.responders import scripted_model  # noqa: E402

Responder = Callable[[dict[str, Any]], str]
FAULTS = (
    "429", "500", "503", "400", "401", "404", "malformed", "truncated", "length", "empty", "invalid", "hang",
    # Hostile 200s: a body that is not JSON, not UTF-8, has no choices, absurd usage; a drip-fed
    # reply that never finishes within any sane deadline; a 10 MB "summary".
    "badjson", "badutf8", "nochoices", "weirdusage", "drip", "huge",
    # Streaming-era faults: a reply that loops until its budget, a stream that stops mid-way, a slow first token.
    "loop", "stall", "slowfirst",
)  # fmt: skip
LLAMA_CPP_SCHEMA_REFUSAL = "Input should be 'text' or 'json_object'"


def default_responder(body: dict[str, Any]) -> str:
    """The scripted model for brief's prompts; for anything else, an object that meets the requested schema."""
    try:
        return scripted_model(body)
    except (ValueError, StopIteration, KeyError):
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        return json.dumps(_instance(schema) if schema else {"ok": True})


def _instance(schema: dict[str, Any]) -> Any:
    """The simplest value valid against `schema`: what a server that enforces json_schema makes a model write."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: _instance(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_instance(schema.get("items", {}))] * schema.get("minItems", 0)
    return {"boolean": True, "integer": 1, "number": 1, "string": "x"}.get(str(kind), None)


class FakeOpenAI:
    """The server and its knobs; attributes may be changed while it runs."""

    def __init__(
        self,
        responder: Responder = default_responder,
        latency: float = 0.0,
        faults: Sequence[str] = (),
        fault_every: int = 0,
        script: Sequence[str | None] = (),
        hang_seconds: float = 5.0,
        retry_after: str | None = "1",
        reject_schema: bool = False,
        reject_object: bool = False,
        ignore_schema: bool = False,
        models_loading: int = 0,
        require_key: str | None = None,
        models: Sequence[str] = ("fake-qwen",),
        log_path: Path | None = None,
    ) -> None:
        unknown = [f for f in [*faults, *script] if f is not None and f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown faults {unknown}; choose from {FAULTS}")
        self.responder = responder
        self.latency = latency
        self.faults = list(faults)
        self.fault_every = fault_every
        self.script = list(script)  # faults for the first requests, in order (None: answer normally)
        self.hang_seconds = hang_seconds
        self.retry_after = retry_after
        self.reject_schema = reject_schema
        self.reject_object = reject_object
        # Like 2025 llama-server builds: json_schema accepted with 200 but not applied (the model writes prose).
        self.ignore_schema = ignore_schema
        self.models_loading = models_loading  # GET /v1/models answers 503 this many times first (a loading model)
        self.reject_fields: list[str] = []  # body fields answered with 400 "unknown field" (a picky server)
        # Like llama.cpp on a CPU: one reply at a time, each streamed as ten pieces this many seconds apart.
        self.cpu_pace: float | None = None
        self._cpu = threading.Lock()
        # Prompts longer than this many characters get llama.cpp's context-size 400 (a small n_ctx).
        self.max_prompt_chars: int | None = None
        self.stream_usage = True  # False: no usage chunk at the end of a stream (llama-cpp-python)
        self.require_key = require_key
        self.models = list(models)
        self.log_path = log_path
        self._lock = threading.Lock()
        self._bodies: list[dict[str, Any]] = []
        self._completed: list[dict[str, Any]] = []
        self._headers: list[dict[str, str]] = []
        self._in_flight = 0
        self.peak_in_flight = 0
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeOpenAI:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _Server(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- what was received ------------------------------------------------------------------------

    def bodies(self) -> list[dict[str, Any]]:
        """Every chat-completions request body received, in arrival order."""
        with self._lock:
            return list(self._bodies)

    def completed_bodies(self) -> list[dict[str, Any]]:
        """The bodies answered with a complete, successful reply."""
        with self._lock:
            return list(self._completed)

    def headers(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._headers)

    def reset(self) -> None:
        with self._lock:
            self._bodies.clear()
            self._completed.clear()
            self._headers.clear()
            self.peak_in_flight = 0

    # -- decisions ------------------------------------------------------------------------------

    def _admit(self, body: dict[str, Any], headers: dict[str, str]) -> str | None:
        """Record a request and pick its fault (None: answer normally)."""
        with self._lock:
            self._bodies.append(body)
            self._headers.append(headers)
            number = len(self._bodies)
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            if number <= len(self.script):
                return self.script[number - 1]
            if self.fault_every and self.faults and number % self.fault_every == 0:
                return self.faults[(number // self.fault_every - 1) % len(self.faults)]
            return None

    def _finish(self, body: dict[str, Any], completed: bool) -> None:
        with self._lock:
            self._in_flight -= 1
            if completed:
                self._completed.append(body)
        if completed and self.log_path is not None:
            with self._lock, self.log_path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(body, ensure_ascii=False) + "\n")


class _Server(ThreadingHTTPServer):
    # The default listen backlog of 5 drops connection bursts (32 clients at once), and a dropped
    # SYN costs the client a one-second retransmit: a stall no real server would cause.
    request_queue_size = 512
    daemon_threads = True


def _completion(content: str, finish_reason: str, body: dict[str, Any]) -> dict[str, Any]:
    prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-qwen"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": max(1, prompt_chars // 2),
            "completion_tokens": max(1, len(content) // 3),
            "total_tokens": max(1, prompt_chars // 2) + max(1, len(content) // 3),
        },
    }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes; with Nagle on, the body waits for the
        # client's delayed ACK (~40 ms per request), an artefact of this server, not of brief.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self._end_with(data)

    def _end_with(self, data: bytes) -> None:
        """End the headers and send them with the body in one write (one segment, one client wake-up)."""
        buffer: list[bytes] = getattr(self, "_headers_buffer", [])  # what send_response/send_header buffered
        self.wfile.write(b"".join([*buffer, b"\r\n", data]))
        buffer.clear()

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": "fake_error", "code": status}}, headers)

    def _authorised(self) -> bool:
        key = self.fake.require_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._error(401, "Incorrect API key provided.")
        return False

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") != "/v1/models":
            self._error(404, f"no route {self.path}")
            return
        with self.fake._lock:
            loading = self.fake.models_loading > 0
            self.fake.models_loading -= 1 if loading else 0
        if loading:
            self._error(503, "Loading model")
            return
        if self._authorised():
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in self.fake.models],
                },
            )

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}")
            return
        body = json.loads(raw.decode("utf-8"))
        fault = self.fake._admit(body, {k.lower(): v for k, v in self.headers.items()})
        completed = False
        try:
            completed = self._answer(body, fault)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing was delivered
        finally:
            self.fake._finish(body, completed)

    def _answer(self, body: dict[str, Any], fault: str | None) -> bool:
        """Reply to one completion request; True when a full successful reply was sent."""
        fake = self.fake
        if not self._authorised():
            return False
        response_format = (body.get("response_format") or {}).get("type")
        if fake.reject_schema and response_format == "json_schema":
            self._error(500, LLAMA_CPP_SCHEMA_REFUSAL)
            return False
        if fake.reject_object and response_format == "json_object":
            self._error(400, "This response_format type is unavailable now")
            return False
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages") or [])
        if fake.max_prompt_chars is not None and prompt_chars > fake.max_prompt_chars:
            self._error(400, "the request exceeds the available context size, try increasing it")
            return False
        unknown = [name for name in fake.reject_fields if name in body]
        if unknown:
            self._error(400, f"Unrecognized request argument supplied: {unknown[0]}")
            return False
        if fault == "hang":
            time.sleep(fake.hang_seconds)
            self.close_connection = True
            return False
        if fake.latency:
            time.sleep(fake.latency)
        if fault in ("429", "500", "503", "400", "401", "404"):
            status = int(fault)
            headers = {"Retry-After": fake.retry_after} if status == 429 and fake.retry_after else None
            self._error(status, f"injected {status}", headers)
            return False
        hostile = self._hostile(fault, body)
        if hostile is not None:
            return hostile
        if fake.ignore_schema and response_format == "json_schema":
            content = "Here is a summary of the article: the government announced new measures."
        else:
            content = fake.responder(body)
        finish, whole = "stop", fault is None
        if fault == "malformed":
            content = content[: len(content) // 2] + "}}"
        elif fault == "truncated":
            content = content[: len(content) // 2]
        elif fault == "length":
            content, finish = content[: len(content) // 2], "length"
        elif fault == "empty":
            content = ""
        elif fault == "invalid":
            content = json.dumps({"unexpected": True})
        if body.get("stream"):
            return self._stream(body, content, fault, finish) and whole
        self._send_json(200, _completion(content, finish, body))
        return whole

    def _stream(self, body: dict[str, Any], content: str, fault: str | None, finish: str = "stop") -> bool:
        """Server-sent events as OpenAI sends them: content deltas, a finish reason, then usage."""

        def event(delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> bytes:
            chunk: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake"}
            chunk["choices"] = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
            if usage:
                chunk["usage"] = usage
            return b"data: " + json.dumps(chunk, ensure_ascii=False).encode("utf-8") + b"\n\n"

        if self.fake.cpu_pace is not None and fault is None:
            return self._paced(content, event)
        completion = _completion(content, "stop", body)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            if fault == "slowfirst":
                time.sleep(self.fake.hang_seconds)
            if fault in ("loop", "stall"):
                self.wfile.write(event({"role": "assistant", "content": '{"title": "Loop", "summary": "'}))
                self.wfile.flush()
                if fault == "stall":
                    time.sleep(self.fake.hang_seconds)
                    return False
                budget = int(body.get("max_tokens") or 2048)
                for _ in range(budget // 8):  # about 8 tokens a piece, until the budget runs out
                    self.wfile.write(event({"content": "the measures the measures "}))
                    self.wfile.flush()
                    time.sleep(0.002)
                self.wfile.write(event({}, "length"))
                self.wfile.write(b"data: [DONE]\n\n")
                return False
            # One write for the whole reply: the server must never be what a benchmark measures.
            self.wfile.write(
                event({"role": "assistant", "content": content})
                + event({}, finish)
                + (
                    event({}, usage=completion["usage"])
                    if self.fake.stream_usage and (body.get("stream_options") or {}).get("include_usage")
                    else b""
                )
                + b"data: [DONE]\n\n"
            )
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def _paced(self, content: str, event: Callable[..., bytes]) -> bool:
        """One reply at a time, in ten pieces `cpu_pace` s apart: a queue that moves slowly but surely."""
        step = max(1, len(content) // 10 + 1)
        # llama-cpp-python answers 200 with its headers at once, then holds the body until the request's turn.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        with self.fake._cpu:
            try:
                for start in range(0, len(content), step):
                    time.sleep(self.fake.cpu_pace or 0.0)
                    self.wfile.write(event({"content": content[start : start + step]}))
                    self.wfile.flush()
                self.wfile.write(event({}, "stop") + b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return False
        return True

    def _raw(self, status: int, data: bytes, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self._end_with(data)

    def _hostile(self, fault: str | None, body: dict[str, Any]) -> bool | None:
        """The hostile 200s; None when `fault` is not one of them."""
        if fault == "badjson":
            self._raw(200, b'{"choices": [{"message": ')
        elif fault == "badutf8":
            self._raw(200, b'{"choices": [{"message": {"content": "\xff\xfe\xfa"}}]}')
        elif fault == "nochoices":
            self._send_json(200, {"id": "x", "object": "chat.completion", "usage": {}})
        elif fault == "weirdusage":
            reply = _completion(self.fake.responder(body), "stop", body)
            reply["usage"] = {"prompt_tokens": "many", "completion_tokens": float("inf"), "total_tokens": 1e300}
            self._raw(200, json.dumps(reply).encode())  # Infinity: not JSON, but some servers send it
            return True
        elif fault == "drip":
            data = json.dumps(_completion(self.fake.responder(body), "stop", body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for byte in data[:50]:  # one byte every 200 ms: each read is "progress"
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
        elif fault == "huge":
            self._send_json(200, _completion("x" * 10_000_000, "stop", body))
        else:
            return None
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--log", type=Path, default=None)
    args = parser.parse_args()
    server = FakeOpenAI(latency=args.latency, log_path=args.log).start(args.port)
    print(f"READY {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
