"""The one way brief talks to a model: OpenAI-compatible chat completions returning validated JSON.

Retries (tenacity only; the SDK's own are off so they don't stack), Retry-After, bounded
concurrency, the JSON-mode fallback ladder (schema → object → prompt), validation with one
corrective retry, and the on-disk cache all live here.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.cache import Cache, cache_key
from pipeline.config import Settings
from pipeline.errors import EndpointRejected, InvalidOutput, ModelError, OutputTruncated, RetriesExhausted

if TYPE_CHECKING:
    from openai import AsyncOpenAI

log = logging.getLogger(__name__)

Check = Callable[[dict[str, Any]], str | None]
Sleep = Callable[[float], Awaitable[None]]

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_HINTS = {
    400: "the endpoint rejected the request: {detail}",
    401: "check OPENAI_API_KEY",
    403: "the key may not use this model or endpoint: check OPENAI_API_KEY and --model",
    404: "no such model or path: check --base-url (usually ends in /v1) and --model (`brief doctor` lists models)",
}
# What endpoints say when they do not support a response_format (llama.cpp's Python server answers
# json_schema with HTTP 500 "Input should be 'text' or 'json_object'").
_FORMAT_REFUSAL = re.compile(r"response_format|json_schema|json_object|'text' or|structured output", re.IGNORECASE)
_MAX_RETRY_AFTER = 120.0
_BACKOFF_INITIAL = 0.5
_BACKOFF_MAX = 30.0
_FALLBACK = {"schema": "object", "object": "prompt"}


@dataclass(frozen=True)
class JsonRequest:
    """One model call: messages plus the schema the reply must meet."""

    prompt_id: str
    prompt_hash: str
    messages: list[dict[str, str]]
    schema_name: str
    schema: dict[str, Any]
    max_tokens: int
    temperature: float
    check: Check | None = field(default=None, compare=False)  # content rule beyond the schema


@dataclass(frozen=True)
class CallResult:
    data: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    attempts: int  # HTTP requests this call made (0 for a cache hit)
    cached: bool


@dataclass
class RunStats:
    """Totals over every call of a run, for run.json."""

    calls: int = 0
    requests: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    invalid_replies: int = 0
    failures: int = 0
    corrupt_cache_entries: int = 0
    json_mode: str = "schema"
    waits_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["waited_s"] = round(sum(data.pop("waits_s")), 3)
        return data


@dataclass
class _Reply:
    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


class _FormatRefused(Exception):
    """The endpoint does not take this response_format; the next mode down may work."""


class _Transient(Exception):
    """A failure worth retrying, with the wait the server asked for, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, min(float(value), _MAX_RETRY_AFTER))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(delta, _MAX_RETRY_AFTER))


def extract_json(content: str) -> Any:
    """Parse a reply; tolerate a Markdown code fence or prose around one JSON object."""
    text = content.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            return json.loads(text[start : end + 1])
        raise


def validation_error(content: str, request: JsonRequest) -> tuple[dict[str, Any] | None, str | None]:
    """(data, None) for a good reply, else (None, what is wrong with it)."""
    if not content.strip():
        return None, "the reply was empty"
    try:
        data = extract_json(content)
    except json.JSONDecodeError as exc:
        return None, f"the reply is not valid JSON ({exc.msg} at character {exc.pos})"
    problem = data_problem(data, request)
    return (None, problem) if problem else (data, None)


def data_problem(data: Any, request: JsonRequest) -> str | None:
    """What is wrong with parsed reply data: the schema first, then the request's content check."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(request.schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "the top level"
        return f"the reply does not match the schema at {where}: {errors[0].message}"
    return request.check(data) if request.check else None


class ModelClient:
    """Validated JSON completions from one endpoint and model, cached and retried."""

    def __init__(self, settings: Settings, cache: Cache | None, sleep: Sleep | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.model = settings.model or ""
        self.base_url = settings.base_url or ""
        self.json_mode = "schema" if settings.json_mode == "auto" else settings.json_mode
        self._auto = settings.json_mode == "auto"
        self._sleep: Sleep = sleep or asyncio.sleep
        self._semaphore = asyncio.Semaphore(max(1, settings.concurrency))
        self._openai: AsyncOpenAI | None = None
        self.stats = RunStats(json_mode=self.json_mode)

    # -- plumbing ---------------------------------------------------------------------------

    def _sdk(self) -> AsyncOpenAI:
        if self._openai is None:
            from openai import AsyncOpenAI, Timeout

            self._openai = AsyncOpenAI(
                base_url=self.base_url,
                api_key=self.settings.api_key,
                max_retries=0,  # tenacity retries; two layers would multiply attempts
                timeout=Timeout(self.settings.timeout, connect=self.settings.connect_timeout),
            )
        return self._openai

    def open(self) -> None:
        """Build the SDK client now rather than on the first request (TLS context, connection pool)."""
        self._sdk()

    async def aclose(self) -> None:
        if self._openai is not None:
            await self._openai.close()
            self._openai = None

    def _rejected(self, status: int, detail: str) -> EndpointRejected:
        hint = _HINTS.get(status, _HINTS[400]).format(detail=detail[:200])
        return EndpointRejected(status, self.base_url, hint)

    # -- public -----------------------------------------------------------------------------

    async def list_models(self) -> list[str]:
        """Model ids the endpoint serves."""
        import openai

        try:
            page = await self._sdk().models.list()
        except openai.APIStatusError as exc:
            raise self._rejected(exc.status_code, _detail(exc)) from None
        except openai.APIConnectionError as exc:
            raise ModelError(f"cannot reach {self.base_url}: {_connection_reason(exc)}") from None
        return [model.id for model in page.data]

    def key_for(self, request: JsonRequest) -> str:
        """Cache key: model, prompt id and hash, messages, schema and sampling; never the API key."""
        return cache_key(
            {
                "model": self.model,
                "prompt": [request.prompt_id, request.prompt_hash],
                "messages": request.messages,
                "schema": request.schema,
                "temperature": request.temperature,
                "max_tokens": request.max_tokens,
            }
        )

    async def complete_json(self, request: JsonRequest) -> CallResult:
        """A validated JSON reply for `request`, from the cache when possible."""
        self.stats.calls += 1
        key = self.key_for(request)
        if self.cache is not None:
            hit = self.cache.get(key)
            self.stats.corrupt_cache_entries = self.cache.corrupt_reads
            if hit is not None and self._still_valid(hit, request):
                self.stats.cache_hits += 1
                return CallResult(hit["data"], 0, 0, 0.0, 0, cached=True)
            self.stats.cache_misses += 1
        try:
            result = await self._complete(request)
        except ModelError:
            self.stats.failures += 1
            raise
        if self.cache is not None:
            self.cache.put(
                key,
                {
                    "data": result.data,
                    "model": self.model,
                    "prompt": request.prompt_id,
                    "usage": [result.prompt_tokens, result.completion_tokens],
                },
            )
        return result

    def _still_valid(self, hit: dict[str, Any], request: JsonRequest) -> bool:
        data = hit.get("data")
        return isinstance(data, dict) and data_problem(data, request) is None

    # -- one call: validation and output-budget retries ---------------------------------------

    async def _complete(self, request: JsonRequest) -> CallResult:
        started = time.monotonic()
        messages = list(request.messages)
        max_tokens = request.max_tokens
        attempts = prompt_tokens = completion_tokens = 0
        corrected = enlarged = False
        while True:
            reply, sent = await self._send(request, messages, max_tokens)
            attempts += sent
            prompt_tokens += reply.prompt_tokens
            completion_tokens += reply.completion_tokens
            if reply.finish_reason == "length":
                if enlarged:
                    raise OutputTruncated(f"reply cut at {max_tokens} tokens twice ({request.prompt_id})")
                enlarged, max_tokens = True, max_tokens * 2
                log.info("%s: reply hit the output budget; retrying with %d tokens", request.prompt_id, max_tokens)
                continue
            data, problem = validation_error(reply.content, request)
            if data is not None:
                latency = time.monotonic() - started
                return CallResult(data, prompt_tokens, completion_tokens, latency, attempts, cached=False)
            self.stats.invalid_replies += 1
            if corrected:
                raise InvalidOutput(f"{request.prompt_id}: {problem}")
            corrected = True
            log.info("%s: invalid reply (%s); asking once more", request.prompt_id, problem)
            messages = [
                *request.messages,
                {"role": "assistant", "content": reply.content[:2000]},
                {
                    "role": "user",
                    "content": f"That reply was rejected: {problem}. Reply again with only the corrected JSON object.",
                },
            ]

    # -- one request: transient retries and the JSON-mode ladder -----------------------------

    async def _send(self, request: JsonRequest, messages: list[dict[str, str]], max_tokens: int) -> tuple[_Reply, int]:
        """Send until a reply arrives; returns it and the number of HTTP requests made."""
        sent = 0
        while True:
            mode = self.json_mode
            try:
                reply, tries = await self._send_with_retries(request, messages, max_tokens, mode)
                return reply, sent + tries
            except _FormatRefused as refusal:
                sent += 1
                if not self._auto or mode not in _FALLBACK:
                    raise EndpointRejected(
                        400,
                        self.base_url,
                        f"it does not accept --json-mode {mode} ({refusal}); try --json-mode object or prompt",
                    ) from None
                if self.json_mode == mode:  # another call may have stepped down already
                    self.json_mode = self.stats.json_mode = _FALLBACK[mode]
                    log.warning(
                        "%s refuses response_format %s; using json mode %s for this run",
                        self.base_url,
                        mode,
                        self.json_mode,
                    )

    async def _send_with_retries(
        self, request: JsonRequest, messages: list[dict[str, str]], max_tokens: int, mode: str
    ) -> tuple[_Reply, int]:
        from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt

        tries = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            sleep=self._record_sleep,
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    tries += 1
                    if tries > 1:
                        self.stats.retries += 1
                    reply = await self._post(request, messages, max_tokens, mode)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise RetriesExhausted(f"gave up after {tries} attempts against {self.base_url}: {last}") from None
        return reply, tries

    def _wait(self, state: Any) -> float:
        """Retry-After when the server sent one, else capped exponential backoff with jitter."""
        import random

        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Transient) and error.retry_after is not None:
            return error.retry_after
        backoff = min(_BACKOFF_MAX, _BACKOFF_INITIAL * 2 ** (state.attempt_number - 1))
        return backoff / 2 + random.uniform(0, backoff / 2)

    async def _record_sleep(self, seconds: float) -> None:
        self.stats.waits_s.append(seconds)
        await self._sleep(seconds)

    async def _post(self, request: JsonRequest, messages: list[dict[str, str]], max_tokens: int, mode: str) -> _Reply:
        """One HTTP request, holding a concurrency slot only while it is in flight."""
        import openai

        body = {"model": self.model, **_arguments(request, messages, max_tokens, mode)}
        async with self._semaphore:
            self.stats.requests += 1
            try:
                # The SDK's raw post (its documented route for custom bodies) sends our JSON as is:
                # the typed create() walks every message and schema through a slow transform.
                completion = await self._sdk().post("/chat/completions", cast_to=object, body=body)
            except openai.APITimeoutError:
                raise _Transient(f"no reply within {self.settings.timeout:g} s") from None
            except openai.APIConnectionError as exc:
                raise _Transient(f"connection failed: {_connection_reason(exc)}") from None
            except openai.APIStatusError as exc:
                raise self._classify(exc, mode) from None
        reply = _parse_completion(completion)
        self.stats.prompt_tokens += reply.prompt_tokens
        self.stats.completion_tokens += reply.completion_tokens
        return reply

    def _classify(self, exc: Any, mode: str) -> Exception:
        status = int(exc.status_code)
        detail = _detail(exc)
        if mode != "prompt" and status in (400, 422, 500) and _FORMAT_REFUSAL.search(detail):
            return _FormatRefused(f"HTTP {status}: {detail[:120]}")
        if status in RETRYABLE_STATUS:
            retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
            return _Transient(f"HTTP {status}: {detail[:120]}", retry_after)
        return self._rejected(status, detail)


def _parse_completion(completion: Any) -> _Reply:
    """Content, finish reason and usage of a chat completion, tolerating what servers leave out."""
    if not isinstance(completion, dict):
        raise _Transient(f"unexpected reply body {str(completion)[:80]!r}")
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    usage = completion.get("usage") or {}
    return _Reply(
        content=str(message.get("content") or ""),
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


def _arguments(request: JsonRequest, messages: list[dict[str, str]], max_tokens: int, mode: str) -> dict[str, Any]:
    """Request arguments for a JSON mode; weaker modes spell the schema out in the system prompt."""
    arguments: dict[str, Any] = {"max_tokens": max_tokens, "temperature": request.temperature}
    if mode == "schema":
        arguments["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name, "schema": request.schema},
        }
    else:
        if mode == "object":  # llama.cpp honours the schema here; others ignore it
            arguments["response_format"] = {"type": "json_object", "schema": request.schema}
        schema_note = (
            "\n\nReply with a single JSON object, no prose and no code fence, valid against this JSON Schema:\n"
            + json.dumps(request.schema, ensure_ascii=False)
        )
        messages = [dict(messages[0], content=messages[0]["content"] + schema_note), *messages[1:]]
    arguments["messages"] = messages
    return arguments


def _detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)
    return str(getattr(exc, "message", "") or exc)


def _connection_reason(exc: Exception) -> str:
    cause = exc.__cause__ or exc.__context__
    return str(cause or exc) or type(exc).__name__
