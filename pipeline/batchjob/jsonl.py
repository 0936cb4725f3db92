"""Batch JSONL files: write request files within the size limits, read result files of every provider's shape.

Request line (OpenAI, DashScope, `vllm run-batch`):
    {"custom_id": KEY, "method": "POST", "url": "/v1/chat/completions", "body": {...}}
Result line (OpenAI/DashScope output and error files, vLLM's BatchRequestOutput, old SGLang):
    {"id": ..., "custom_id": KEY, "response": {"status_code": 200, "request_id": ..., "body": {...}} | null,
     "error": null | "message" | {"message": ..., "code": ...} | {"error": {...}}}
Old SGLang (≤ 0.4.7) wrote `body.choices` as one object instead of a list; it is wrapped here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pipeline.batchjob.engine import BatchRequest

MAX_LINES = 50_000
MAX_BYTES = 100 * 1024 * 1024
CHAT_URL = "/v1/chat/completions"
_JUNK_SAMPLES = 5
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_ID_HEAD = b'{"custom_id":"'


def one_line(text: object, limit: int = 300) -> str:
    """Collapse untrusted text into one short printable line."""
    flat = " ".join(_CONTROL.sub(" ", str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def request_line(request: BatchRequest, url: str = CHAT_URL) -> bytes:
    """Encode one request as a Batch input line (UTF-8, newline-terminated)."""
    line = {"custom_id": request.custom_id, "method": "POST", "url": url, "body": request.body}
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def output_budget(body: dict[str, Any]) -> int:
    """The most completion tokens a request may cost (0 when the body sets no bound)."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


@dataclass
class WrittenFile:
    """One request file as written: its name in the job folder and what it holds."""

    name: str
    stage: str
    lines: int = 0
    bytes: int = 0
    est_prompt_tokens: int = 0
    max_output_tokens: int = 0


@dataclass
class WriteReport:
    """The files written for one stage, and the requests that could not go in any file."""

    files: list[WrittenFile] = field(default_factory=list)
    duplicates: int = 0  # a custom_id already written (Batch APIs need them unique per file)
    oversize: list[str] = field(default_factory=list)  # one line alone exceeds the byte limit


class RequestWriter:
    """Stream one stage's requests into `base.jsonl`, or `base-001.jsonl`, `base-002.jsonl`, … past the limits.

    Files are written under temporary names and renamed by close(), so a crash leaves no
    half-written request file under a final name; abort() removes them.
    """

    def __init__(self, job_dir: Path, base: str, *, url: str, max_lines: int, max_bytes: int) -> None:
        if max_lines < 1 or max_bytes < 1:
            raise ValueError("max_lines and max_bytes must be positive")
        self.job_dir, self.base, self.url = job_dir, base, url
        self.max_lines, self.max_bytes = max_lines, max_bytes
        self.report = WriteReport()
        self._seen: set[str] = set()
        self._parts: list[tuple[Path, WrittenFile]] = []
        self._handle: IO[bytes] | None = None
        self._current: WrittenFile | None = None

    def add(self, request: BatchRequest) -> bool:
        """Write one request; False when it is a duplicate or too big for any file."""
        if request.custom_id in self._seen:
            self.report.duplicates += 1
            return False
        self._seen.add(request.custom_id)
        line = request_line(request, self.url)
        if len(line) > self.max_bytes:
            self.report.oversize.append(request.custom_id)
            return False
        current = self._current
        if current is None or current.lines >= self.max_lines or current.bytes + len(line) > self.max_bytes:
            if self._handle is not None:
                self._handle.close()
            temp = self.job_dir / f".{self.base}.part{len(self._parts) + 1}"
            current = self._current = WrittenFile(name="", stage=request.stage)
            self._parts.append((temp, current))
            self._handle = temp.open("wb")
        assert self._handle is not None  # opened together with `current`
        self._handle.write(line)
        current.lines += 1
        current.bytes += len(line)
        current.est_prompt_tokens += max(0, request.est_prompt_tokens)
        current.max_output_tokens += output_budget(request.body)
        return True

    def close(self) -> WriteReport:
        """Give the files their final names; return what was written."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        for index, (temp, written) in enumerate(self._parts, start=1):
            written.name = f"{self.base}.jsonl" if len(self._parts) == 1 else f"{self.base}-{index:03d}.jsonl"
            os.replace(temp, self.job_dir / written.name)
            self.report.files.append(written)
        self._parts = []
        return self.report

    def abort(self) -> None:
        """Drop the temporary files (a failed prepare leaves nothing behind)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        for temp, _ in self._parts:
            temp.unlink(missing_ok=True)
        self._parts = []


def write_requests(
    requests: Iterable[BatchRequest],
    job_dir: Path,
    base: str,
    *,
    url: str = CHAT_URL,
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
) -> WriteReport:
    """Stream requests into `base.jsonl`, or `base-001.jsonl`, `base-002.jsonl`, … past the limits."""
    writer = RequestWriter(job_dir, base, url=url, max_lines=max_lines, max_bytes=max_bytes)
    try:
        for request in requests:
            writer.add(request)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def iter_request_ids(path: Path) -> Iterator[str]:
    """Yield the custom_id of every line of a request file we wrote (without decoding the bodies)."""
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            # request_line() puts the id first; an id with an escape in it is decoded the long way.
            if raw.startswith(_ID_HEAD):
                end = raw.find(b'"', len(_ID_HEAD))
                if end > 0 and b"\\" not in raw[len(_ID_HEAD) : end]:
                    yield raw[len(_ID_HEAD) : end].decode("utf-8")
                    continue
            yield json.loads(raw)["custom_id"]


def usage_of(body: dict[str, Any]) -> tuple[int, int]:
    """Prompt and completion tokens a chat completion reports (0 for what it leaves out or garbles)."""
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return 0, 0
    return _tokens(usage.get("prompt_tokens")), _tokens(usage.get("completion_tokens"))


def _tokens(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 40 else 0


@dataclass(frozen=True)
class ResultLine:
    """One parsed result: the chat completion when it succeeded, else a one-line error."""

    custom_id: str
    body: dict[str, Any] | None
    error: str | None


@dataclass
class ParseStats:
    """What a pass over result files found, junk included (counted, never fatal)."""

    lines: int = 0
    results: int = 0
    errors: int = 0
    junk: int = 0
    junk_samples: list[str] = field(default_factory=list)

    def add_junk(self, where: str, reason: str) -> None:
        self.junk += 1
        if len(self.junk_samples) < _JUNK_SAMPLES:
            self.junk_samples.append(f"{where}: {reason}")


def iter_results(path: Path, stats: ParseStats) -> Iterator[ResultLine]:
    """Stream the result lines of one file, counting (and skipping) lines that are not results."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            stats.lines += 1
            where = f"{path.name} line {number}"
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                stats.add_junk(where, "not JSON")
                continue
            parsed = parse_result(obj)
            if isinstance(parsed, str):
                stats.add_junk(where, parsed)
                continue
            stats.results += 1
            if parsed.error is not None:
                stats.errors += 1
            yield parsed


def parse_result(obj: Any) -> ResultLine | str:
    """Read one decoded result line; a string return says why it is junk."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return "no custom_id"
    error = obj.get("error")
    response = obj.get("response")
    if error is not None:
        return ResultLine(custom_id, None, _error_text(error, response))
    if not isinstance(response, dict):
        return ResultLine(custom_id, None, "no response")
    status = response.get("status_code", 200)
    body = response.get("body")
    if status != 200:
        return ResultLine(custom_id, None, f"HTTP {one_line(status, 20)}: {_body_error(body)}")
    if not isinstance(body, dict):
        return ResultLine(custom_id, None, "empty response body")
    return ResultLine(custom_id, normalize_completion(body), None)


def normalize_completion(body: dict[str, Any]) -> dict[str, Any]:
    """Make a provider's chat completion look like OpenAI's (old SGLang: `choices` as one object)."""
    choices = body.get("choices")
    if isinstance(choices, dict):
        return {**body, "choices": [choices]}
    return body


def _error_text(error: Any, response: Any) -> str:
    if isinstance(error, dict):
        nested = error.get("error")
        if isinstance(nested, dict):  # vLLM's ErrorResponse: {"error": {"message", "type", "code"}}
            error = nested
        message = error.get("message")
        code = error.get("code")
        text = one_line(message if message is not None else error)
        return f"{one_line(code, 40)}: {text}" if code not in (None, "") else text
    status = response.get("status_code") if isinstance(response, dict) else None
    prefix = f"HTTP {one_line(status, 20)}: " if status not in (None, 200) else ""
    return prefix + one_line(error)


def _body_error(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message") is not None:
            return one_line(error["message"])
        if body.get("message") is not None:
            return one_line(body["message"])
    return "request failed" if body is None else one_line(body)
