"""A fast OpenAI-compatible fake server for benchmarks: asyncio on 127.0.0.1, same replies as tests/fakeserver.py.

The threaded server in tests/fakeserver.py parses headers with the stdlib's email parser and
sleeps in one thread per connection; at 128 requests in flight on two cores that costs enough
CPU to blur what is being measured, the client. This one answers from one event loop: latency
is a timer, not a sleeping thread, and each reply goes out in one write (TCP_NODELAY is the
asyncio default for TCP). It serves GET /v1/models and POST /v1/chat/completions with the
scripted model, and nothing else (no fault injection: use tests/fakeserver.py for that).
Streamed requests get server-sent events on a kept-alive connection (chunked, as vLLM sends
them): the whole reply in one delta, or --piece-chars N characters per delta, about one token
per event as a real server streams.

    python tests/fastfake.py --port 0 --latency 0.2 [--log requests.jsonl] [--piece-chars 4]

prints "READY <base_url>" once listening; --log appends each answered request body as a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import IO, Any

if __package__ in (None, ""):  # run as a script: make `tests.fakeserver` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakeserver import _completion, default_responder  # noqa: E402

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required", 413: "Payload Too Large"}


class FastFake:
    """Shared state of the server: its knobs and the request log."""

    def __init__(
        self,
        latency: float = 0.0,
        models: tuple[str, ...] = ("fake-qwen",),
        log: IO[str] | None = None,
        piece_chars: int = 0,
    ) -> None:
        self.latency = latency
        self.piece_chars = piece_chars
        self.models = models
        self.log = log
        self.answered = 0

    def reply(self, method: str, path: str, body: bytes) -> tuple[int, bytes, bool]:
        """The status, the body and whether it is an event stream, for one request."""
        path = path.split("?", 1)[0].rstrip("/")
        if method == "GET" and path == "/v1/models":
            models = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models]
            return 200, _dumps({"object": "list", "data": models}), False
        if method != "POST" or path != "/v1/chat/completions":
            return 404, _error(404, f"no route {method} {path}"), False
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return 400, _error(400, "body is not JSON"), False
        if not isinstance(request, dict):
            return 400, _error(400, "body is not a JSON object"), False
        self.answered += 1
        if self.log is not None:
            self.log.write(json.dumps(request, ensure_ascii=False) + "\n")
        completion = _completion(default_responder(request), "stop", request)
        if request.get("stream"):
            return 200, self._events(request, completion), True
        return 200, _dumps(completion), False

    def _events(self, request: dict[str, Any], completion: dict[str, Any]) -> bytes:
        """The completion as server-sent events: content deltas, the finish reason, usage if asked, [DONE]."""
        content = completion["choices"][0]["message"]["content"]
        size = self.piece_chars or max(1, len(content))
        pieces = [content[at : at + size] for at in range(0, len(content), size)] or [""]
        base = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"]}
        base["model"] = completion["model"]
        events = []
        for n, piece in enumerate(pieces):
            delta = {"role": "assistant", "content": piece} if n == 0 else {"content": piece}
            events.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (request.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": completion["usage"]})
        return b"".join(b"data: " + _dumps(event) + b"\n\n" for event in events) + b"data: [DONE]\n\n"


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _error(status: int, message: str) -> bytes:
    return _dumps({"error": {"message": message, "type": "fake_error", "code": status}})


class _Connection(asyncio.Protocol):
    """One keep-alive connection; requests on it are answered in order, one at a time."""

    def __init__(self, server: FastFake) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a reply is pending (latency timer): parse nothing more until it is sent

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        """Answer the next complete request in the buffer, if there is one."""
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self.buffer) > MAX_HEADER_BYTES:
                self._send(413, _error(413, "headers too large"), close=True)
            return
        lines = bytes(self.buffer[:head_end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            self._send(400, _error(400, "bad request line"), close=True)
            return
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._send(411, _error(411, "send Content-Length"), close=True)
            return
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._send(400, _error(400, "bad Content-Length"), close=True)
            return
        end = head_end + 4 + length
        if len(self.buffer) < end:
            return  # the body is still arriving
        body = bytes(self.buffer[head_end + 4 : end])
        del self.buffer[:end]
        status, payload, stream = self.server.reply(parts[0], parts[1], body)
        close = headers.get("connection", "").lower() == "close"
        if self.server.latency and parts[0] == "POST":
            self.busy = True
            asyncio.get_running_loop().call_later(self.server.latency, self._send, status, payload, close, stream)
        else:
            self._send(status, payload, close, stream)

    def _send(self, status: int, payload: bytes, close: bool = False, stream: bool = False) -> None:
        self.busy = False
        if self.transport is None or self.transport.is_closing():
            return
        head = f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        head += f"Connection: {'close' if close else 'keep-alive'}\r\n"
        if stream:  # chunked, as streaming servers send events; all of them in one chunk here
            head += "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
            payload = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
        else:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        self.transport.write(head.encode("latin-1") + payload)  # one write per reply
        if close:
            self.transport.close()
        elif self.buffer:
            self._next()


async def serve(port: int, latency: float, log_path: Path | None, piece_chars: int = 0) -> None:
    log = log_path.open("a", encoding="utf-8", buffering=1) if log_path is not None else None
    fake = FastFake(latency=latency, log=log, piece_chars=piece_chars)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(fake), "127.0.0.1", port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    async with server:
        await stop.wait()
    if log is not None:
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--piece-chars", type=int, default=0, help="characters per streamed delta (0: one delta)")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.latency, args.log, args.piece_chars))


if __name__ == "__main__":
    main()
