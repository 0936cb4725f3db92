"""A fake Files + Batches API for tests (real HTTP on 127.0.0.1, port 0), result writers, and a toy stage engine.

FakeBatchAPI speaks POST/GET /v1/files, GET /v1/files/{id}[/content], POST/GET /v1/batches,
GET /v1/batches/{id}, POST /v1/batches/{id}/cancel, and is driven by the real openai client.
A batch moves validating → in_progress → finalizing → completed (or failed / expired /
cancelled) one step per retrieve, or one step per `seconds_per_status`. Each line's chat
completion comes from a responder (body → content); raising LineFailure makes that line fail.

    with FakeBatchAPI(responder=toy_responder) as api:
        client = openai.AsyncOpenAI(base_url=api.base_url, api_key="k", max_retries=0)
        ... api.uploads, api.batches, api.log

write_results() writes a results file in the exact `vllm run-batch` shape (or old SGLang's).
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openai

Responder = Callable[[dict[str, Any]], str]
STEPS = {"completed": ["in_progress", "finalizing", "completed"], "failed": ["failed"]}
STEPS["expired"] = ["in_progress", "expired"]
STEPS["cancelled"] = ["in_progress", "cancelled"]


class LineFailure(Exception):
    """Raised by a responder: this line fails with an HTTP status and message."""

    def __init__(self, status: int = 500, message: str = "model overloaded", code: str = "server_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def toy_responder(body: dict[str, Any]) -> str:
    """Answer a toy request: echo the user message and derive an answer from it."""
    text = body["messages"][-1]["content"]
    return json.dumps({"answer": f"ans({text})", "echo": text})


def failing(texts: Sequence[str], *, times: int | None = 1, status: int = 500) -> Responder:
    """toy_responder, except that requests whose user text is in texts fail (the first `times` tries; None: always)."""
    left = Counter({text: times or 0 for text in texts})

    def respond(body: dict[str, Any]) -> str:
        text = body["messages"][-1]["content"]
        if text in left and (times is None or left[text] > 0):
            left[text] -= 1
            raise LineFailure(status, f"could not answer {text}")
        return toy_responder(body)

    return respond


def make_client(api: FakeBatchAPI) -> openai.AsyncOpenAI:
    """The real openai client pointed at the fake (SDK retries off: the job retries)."""
    return openai.AsyncOpenAI(base_url=api.base_url, api_key="sk-test-secret-key", max_retries=0)


class Sleeps:
    """An injectable sleep that records what it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    """An OpenAI chat completion carrying content."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def answer_line(request: dict[str, Any], responder: Responder, shape: str = "openai") -> dict[str, Any]:
    """One result line for one request line, in the shape of OpenAI, vLLM (`run-batch`) or old SGLang."""
    custom_id, body = request["custom_id"], request["body"]
    rid = uuid.uuid4().hex
    line_id = f"vllm-{rid}" if shape == "vllm" else f"batch_req_{rid}"
    request_id = f"vllm-batch-{rid}" if shape == "vllm" else f"req_{rid}"
    try:
        content = responder(body)
    except LineFailure as failure:
        if shape == "vllm":  # run_batch.make_error_request_output: status 400, no body, error is a string
            response: dict[str, Any] = {"status_code": failure.status, "request_id": request_id, "body": None}
            return {"id": line_id, "custom_id": custom_id, "response": response, "error": failure.message}
        error = {"message": failure.message, "type": "invalid_request_error", "param": None, "code": failure.code}
        response = {"status_code": failure.status, "request_id": request_id, "body": {"error": error}}
        return {"id": line_id, "custom_id": custom_id, "response": response, "error": None}
    chat = completion(body, content)
    if shape == "vllm":  # ChatCompletionResponse.model_dump_json(): every field, nulls included
        chat["choices"][0].update({"logprobs": None, "stop_reason": None})
        chat["choices"][0]["message"].update({"reasoning_content": None, "tool_calls": []})
        chat.update({"service_tier": None, "system_fingerprint": None, "prompt_logprobs": None})
        chat["usage"]["prompt_tokens_details"] = None
    if shape == "sglang":  # adapter.v1_chat_generate_response(to_file=True): choices is one object
        chat["choices"] = chat["choices"][0]
    response = {"status_code": 200, "request_id": request_id, "body": chat}
    return {"id": line_id, "custom_id": custom_id, "response": response, "error": None}


def write_results(
    requests_path: Path,
    out_path: Path,
    responder: Responder = toy_responder,
    *,
    shape: str = "vllm",
    seed: int | None = 0,
    junk: Sequence[bytes] = (),
) -> int:
    """Write what `vllm run-batch -i requests -o out` would (shuffled when seed is set); return the line count."""
    requests = [json.loads(raw) for raw in requests_path.read_bytes().splitlines() if raw.strip()]
    lines = [json.dumps(answer_line(request, responder, shape)).encode() for request in requests]
    if seed is not None:
        random.Random(seed).shuffle(lines)
    lines[len(lines) // 2 : len(lines) // 2] = list(junk)
    out_path.write_bytes(b"".join(line + b"\n" for line in lines))
    return len(lines)


class FakeBatchAPI:
    """The server and its knobs; attributes may be changed while it runs."""

    def __init__(
        self,
        responder: Responder = toy_responder,
        *,
        outcomes: Sequence[str] = (),
        partial: int = 1,
        polls_per_status: int = 1,
        seconds_per_status: float | None = None,
        seed: int | None = 1,
        junk: Sequence[bytes] = (),
        faults: Sequence[tuple[str, str, int]] = (),
        listing: bool = True,
    ) -> None:
        self.responder = responder
        self.outcomes = list(outcomes)  # terminal status for each batch created, in order; then "completed"
        self.partial = partial  # lines answered before an expiry or cancellation
        self.polls_per_status = polls_per_status
        self.seconds_per_status = seconds_per_status
        self.seed = seed
        self.junk = list(junk)  # raw lines slipped into every output file
        self.faults = list(faults)  # (method, path prefix, status): answered once each, first match
        self.listing = listing  # GET /v1/files and GET /v1/batches (old SGLang has neither)
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.plans: dict[str, list[str]] = {}
        self.uploads: list[str] = []  # uploaded file names, in order
        self.log: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeBatchAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def created(self) -> list[dict[str, Any]]:
        return list(self.batches.values())

    def _add_file(self, name: str, data: bytes, purpose: str) -> dict[str, Any]:
        file_id = f"file-{uuid.uuid4().hex[:16]}"
        record = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time())}
        record.update({"filename": name, "purpose": purpose, "status": "processed"})
        self.files[file_id], self.contents[file_id] = record, data
        return record

    def _create(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        file_id = payload.get("input_file_id")
        if file_id not in self.files:
            return 404, _error(f"No such File object: {file_id}", "invalid_request_error")
        if payload.get("completion_window") != "24h":
            return 400, _error("completion_window must be 24h", "invalid_request_error")
        batch_id = f"batch_{uuid.uuid4().hex[:16]}"
        outcome = self.outcomes.pop(0) if self.outcomes else "completed"
        batch = {"id": batch_id, "object": "batch", "endpoint": payload.get("endpoint"), "errors": None}
        batch.update({"input_file_id": file_id, "completion_window": "24h", "status": "validating"})
        batch.update({"output_file_id": None, "error_file_id": None, "created_at": int(time.time())})
        batch.update({"request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": payload.get("metadata")})
        batch["_polls"], batch["_since"] = 0, time.monotonic()
        self.batches[batch_id], self.plans[batch_id] = batch, list(STEPS.get(outcome, STEPS["completed"]))
        return 200, _public(batch)

    def _advance(self, batch: dict[str, Any]) -> None:
        batch["_polls"] += 1
        due = (
            time.monotonic() - batch["_since"] >= self.seconds_per_status
            if self.seconds_per_status is not None
            else batch["_polls"] >= self.polls_per_status
        )
        plan = self.plans[batch["id"]]
        if not due or not plan or batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return
        batch["status"], batch["_polls"], batch["_since"] = plan.pop(0), 0, time.monotonic()
        if batch["status"] in ("completed", "expired", "cancelled"):
            self._finish(batch, answered=None if batch["status"] == "completed" else self.partial)
        elif batch["status"] == "failed":
            error = {"code": "invalid_request", "message": "The batch failed validation.", "param": None, "line": 1}
            batch["errors"] = {"object": "list", "data": [error]}

    def _finish(self, batch: dict[str, Any], answered: int | None) -> None:
        raw = self.contents[batch["input_file_id"]]
        requests = [json.loads(line) for line in raw.splitlines() if line.strip()]
        ok: list[bytes] = []
        bad: list[bytes] = []
        for index, request in enumerate(requests):
            if answered is not None and index >= answered:
                error = {"code": f"batch_{batch['status']}", "message": "This request could not be executed."}
                line = {"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": request["custom_id"], "response": None}
                bad.append(json.dumps({**line, "error": error}).encode())
                continue
            result = answer_line(request, self.responder)
            (ok if result["response"]["status_code"] == 200 else bad).append(json.dumps(result).encode())
        if self.seed is not None:
            random.Random(self.seed).shuffle(ok)
        ok[len(ok) // 2 : len(ok) // 2] = self.junk
        for key, lines in (("output_file_id", ok), ("error_file_id", bad)):
            if lines:
                data = b"".join(line + b"\n" for line in lines)
                batch[key] = self._add_file(f"{batch['id']}_{key}.jsonl", data, "batch_output")["id"]
        failed = len(bad)
        batch["request_counts"] = {"total": len(requests), "completed": len(requests) - failed, "failed": failed}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                ctype = "application/octet-stream" if raw is not None else "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _fault(self, method: str, path: str) -> bool:
                for fault in api.faults:
                    if fault[0] == method and path.startswith(fault[1]):
                        api.faults.remove(fault)
                        self._send(fault[2], _error("injected fault", "server_error"))
                        return True
                return False

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                with api.lock:
                    api.log.append(("GET", url.path))
                    if self._fault("GET", url.path):
                        return
                    parts = url.path.strip("/").split("/")
                    if len(parts) == 2 and not api.listing:
                        return self._send(404, _error("Not Found", "invalid_request_error"))
                    if parts[:2] == ["v1", "files"] and len(parts) == 2:
                        purpose = parse_qs(url.query).get("purpose", [None])[0]
                        data = [f for f in api.files.values() if purpose in (None, f["purpose"])]
                        return self._send(200, {"object": "list", "data": data, "has_more": False})
                    if parts[:2] == ["v1", "files"] and len(parts) in (3, 4) and parts[2] in api.files:
                        if len(parts) == 4 and parts[3] == "content":
                            return self._send(200, None, raw=api.contents[parts[2]])
                        return self._send(200, api.files[parts[2]])
                    if parts[:2] == ["v1", "batches"] and len(parts) == 2:
                        data = [_public(b) for b in reversed(api.batches.values())]
                        return self._send(200, {"object": "list", "data": data, "has_more": False})
                    if parts[:2] == ["v1", "batches"] and len(parts) == 3 and parts[2] in api.batches:
                        api._advance(api.batches[parts[2]])
                        return self._send(200, _public(api.batches[parts[2]]))
                    self._send(404, _error("Not Found", "invalid_request_error"))

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with api.lock:
                    api.log.append(("POST", url.path))
                    if self._fault("POST", url.path):
                        return
                    parts = url.path.strip("/").split("/")
                    if parts == ["v1", "files"]:
                        fields = _multipart(self.headers.get("Content-Type", ""), body)
                        if "file" not in fields or fields.get("purpose", (None, b""))[1] != b"batch":
                            return self._send(400, _error("file and purpose=batch required", "invalid_request_error"))
                        name, data = fields["file"]
                        api.uploads.append(name or "")
                        return self._send(200, api._add_file(name or "upload.jsonl", data, "batch"))
                    if parts == ["v1", "batches"]:
                        return self._send(*api._create(json.loads(body or b"{}")))
                    if parts[:2] == ["v1", "batches"] and len(parts) == 4 and parts[2] in api.batches:
                        batch = api.batches[parts[2]]
                        if batch["status"] in ("validating", "in_progress", "finalizing"):
                            batch["status"], api.plans[batch["id"]] = "cancelling", ["cancelled"]
                        return self._send(200, _public(batch))
                    self._send(404, _error("Not Found", "invalid_request_error"))

        return Handler


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in batch.items() if not key.startswith("_")}


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (part.get_filename(), payload)
    return fields
