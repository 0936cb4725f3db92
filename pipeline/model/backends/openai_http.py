"""The OpenAI-compatible HTTP backend: one chat-completions attempt through the openai SDK."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from typing import TYPE_CHECKING, Any

from pipeline.errors import EndpointRejected, EndpointUnavailable, PromptTooLong
from pipeline.model.backends import Deadlines, FormatRefused, Reply, Transient, Unreachable
from pipeline.model.retry import parse_retry_after
from pipeline.model.validate import MAX_REPLY_CHARS
from pipeline.responsive import load_in_thread
from pipeline.secrets import public_url

if TYPE_CHECKING:
    from openai import AsyncOpenAI

log = logging.getLogger(__name__)

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
# How servers say a prompt does not fit the context: OpenAI and vLLM ("maximum context length"),
# llama.cpp ("exceeds the available context size"), llama-cpp-python ("exceed context window"), TGI, SGLang.
_CONTEXT_OVERFLOW = re.compile(
    r"context.length|context_length|context window|context size|maximum context|prompt is too long"
    r"|too many (input )?tokens|input.{0,40}too long|longer than the model",
    re.IGNORECASE,
)
# Token counts beyond this are not counts: a broken or hostile server.
_MAX_TOKENS_REPORTED = 10_000_000


class OpenAIHTTPBackend:
    """Chat completions over HTTP with the official SDK (its own retries off: ours are composed above)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        deadlines: Deadlines,
        *,
        stream: bool = True,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self._url = base_url
        self.base_url = public_url(base_url) or base_url
        self.api_key = api_key
        self.deadlines = deadlines
        self.timeout = deadlines.total
        self.connect_timeout = deadlines.connect
        self.stream = stream
        # Sampling settings some servers take and others refuse (llama.cpp's repeat_penalty): dropped on refusal.
        self.extra_body = dict(extra_body or {})
        self._sdk: AsyncOpenAI | None = None
        self._building: asyncio.Future[AsyncOpenAI] | None = None
        self._progress = 0.0  # loop time of the last piece any reply brought (a queue that moves)

    async def ready(self) -> AsyncOpenAI:
        """The SDK client, built in a worker thread on first use: importing openai and making its TLS
        context take ~0.7 s of CPU, which on the event loop would hold up every other task. A run
        whose every call is a cache hit never gets here (nor pays for the import)."""
        if self._sdk is None:
            if self._building is None:
                self._building = asyncio.ensure_future(load_in_thread(self._build_sdk))
            # shield: a caller cancelled while waiting must not cancel the build the others wait for
            built = await asyncio.shield(self._building)
            if self._sdk is None:
                self._sdk = built
        return self._sdk

    def _build_sdk(self) -> AsyncOpenAI:
        from openai import AsyncOpenAI, AsyncStream, Timeout  # noqa: F401  AsyncStream: used by every stream

        with contextlib.suppress(ImportError):  # what the first request imports lazily (anyio's asyncio backend)
            import anyio._backends._asyncio  # noqa: F401
        timeout = Timeout(self.timeout, connect=self.connect_timeout)
        return AsyncOpenAI(
            base_url=self._url,
            # The SDK insists on a key; a server the user did not name gets a placeholder, never theirs.
            api_key=self.api_key or "sk-no-key-required",
            max_retries=0,  # tenacity retries above; two layers would multiply attempts
            timeout=timeout,
            http_client=_http_client(timeout),
        )

    async def aclose(self) -> None:
        if self._sdk is None and self._building is not None and not self._building.cancelled():
            with contextlib.suppress(Exception):  # a build still under way: close what it makes
                self._sdk = await asyncio.shield(self._building)
        self._building = None
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None

    def rejected(self, status: int, detail: str) -> EndpointRejected:
        hint = _HINTS.get(status, _HINTS[400]).format(detail=detail[:200])
        return EndpointRejected(status, self.base_url, hint)

    async def list_models(self) -> list[str]:
        sdk = await self.ready()
        import openai

        try:
            async with asyncio.timeout(self.timeout):
                page = await sdk.models.list()
        except openai.APIStatusError as exc:
            if exc.status_code in RETRYABLE_STATUS:
                raise Transient(f"HTTP {exc.status_code} listing models", _retry_after(exc)) from None
            raise self.rejected(exc.status_code, _detail(exc)) from None
        except (openai.APIConnectionError, TimeoutError) as exc:
            raise EndpointUnavailable(f"cannot reach {self.base_url}: {_connection_reason(exc)}") from None
        except (ValueError, TypeError, AttributeError) as exc:
            raise EndpointUnavailable(
                f"{self.base_url} did not answer like an OpenAI-compatible server ({exc})"
            ) from None
        return [str(model.id) for model in page.data if isinstance(getattr(model, "id", None), str)]

    async def send(self, body: dict[str, Any]) -> Reply:
        """One attempt, bounded by a hard deadline whatever the server does (a drip-feeding server included)."""
        sdk = await self.ready()
        import openai

        body = {**body, **self.extra_body}
        queued = self.stream and self.deadlines.queued
        try:
            # Queued (a local server): the hard deadline starts at the first token (see _streamed).
            async with asyncio.timeout(None if queued else self.timeout) as whole:
                if self.stream:
                    return await self._streamed(body, whole)
                # The SDK's raw post (its documented route for custom bodies) sends our JSON as is:
                # the typed create() walks every message and schema through a slow transform.
                completion = await sdk.post("/chat/completions", cast_to=object, body=body)
        except TimeoutError:
            raise Transient(f"no complete reply within {self.timeout:g} s") from None
        except openai.APITimeoutError:
            raise Transient(f"no reply within {self.timeout:g} s") from None
        except openai.APIConnectionError as exc:
            raise Unreachable(f"connection failed: {_connection_reason(exc)}") from None
        except openai.APIStatusError as exc:
            raise self._classify(exc, body) from None
        except (ValueError, UnicodeDecodeError, TypeError, KeyError, AttributeError) as exc:
            raise Transient(f"malformed reply body ({type(exc).__name__})") from None  # a 200 that is not JSON
        return parse_completion(completion)

    async def _streamed(self, body: dict[str, Any], whole: asyncio.Timeout) -> Reply:
        """Stream the reply, timed by progress: a first-token limit, an idle limit, loops cut short."""
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        loop = asyncio.get_running_loop()
        started = loop.time()
        stream, chunks, first = await self._first_piece(body, started)
        if self.deadlines.queued:
            whole.reschedule(loop.time() + self.timeout)
        reply = StreamedReply()
        idle = self.deadlines.idle
        try:
            if first is None or reply.add(first):
                return reply.result()
            # One timer for the whole stream, moved on at each piece: a wait_for per piece costs a task each.
            quiet = asyncio.timeout_at(loop.time() + idle)
            try:
                async with quiet:
                    async for chunk in chunks:
                        now = self._progress = loop.time()
                        quiet.reschedule(now + idle)
                        if reply.add(chunk):
                            log.info("%s: the reply repeats itself; cut after %d pieces", self.base_url, reply.pieces)
                            break
                        if reply.pieces % 500 == 0 and reply.pieces:
                            log.info("%s: %d pieces received in %.0f s", self.base_url, reply.pieces, now - started)
            except TimeoutError:
                if not quiet.expired():
                    raise
                raise Transient(f"no progress for {idle:g} s between tokens ({reply.pieces} pieces received)") from None
        finally:
            await stream.close()
        return reply.result()

    async def _first_piece(self, body: dict[str, Any], started: float) -> tuple[Any, Any, Any]:
        """The open stream, its iterator and its first piece (None: it ended at once), within the first-token limit.

        Queued, the limit counts from the later of the request and the endpoint's last progress on any
        reply, so the tenth request behind nine long ones waits, while a server doing nothing does not.
        """
        loop = asyncio.get_running_loop()
        limit = self.deadlines.first_token
        opening = asyncio.ensure_future(self._open_stream(body))
        try:
            while True:
                since = max(started, self._progress) if self.deadlines.queued else started
                left = since + limit - loop.time()
                if left <= 0:
                    raise Transient(f"no progress for {limit:g} s before the first token")
                done, _ = await asyncio.wait({opening}, timeout=left)
                if done:
                    self._progress = loop.time()
                    return opening.result()
        finally:
            if not opening.done():
                opening.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await opening

    async def _open_stream(self, body: dict[str, Any]) -> tuple[Any, Any, Any]:
        from openai import AsyncStream

        stream = await (await self.ready()).post(
            "/chat/completions", cast_to=object, body=body, stream=True, stream_cls=AsyncStream[object]
        )
        chunks = stream.__aiter__()
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            first = None
        except BaseException:
            await stream.close()
            raise
        return stream, chunks, first

    def _classify(self, exc: Any, body: dict[str, Any]) -> Exception:
        status = int(exc.status_code)
        detail = _detail(exc)
        if "response_format" in body and status in (400, 422, 500) and _FORMAT_REFUSAL.search(detail):
            return FormatRefused(f"HTTP {status}: {detail[:120]}")
        if status in (400, 413, 422, 500) and _CONTEXT_OVERFLOW.search(detail):
            # Not the endpoint's fault nor the run's: this input is split smaller and sent again.
            return PromptTooLong(f"the prompt does not fit the model's context ({self.base_url}: {detail[:160]})")
        refused = [name for name in (*self.extra_body, "stream_options") if name in detail]
        if status in (400, 422) and refused:
            # A server that does not know a sampling knob: drop it for the rest of the run and try again.
            for name in refused:
                self.extra_body.pop(name, None)
            if "stream_options" in refused:
                self.stream = False
            log.warning("%s does not accept %s; going on without", self.base_url, ", ".join(refused))
            return Transient(f"HTTP {status}: {detail[:120]} (retrying without {', '.join(refused)})", 0.0)
        if status in RETRYABLE_STATUS:
            return Transient(f"HTTP {status}: {detail[:120]}", _retry_after(exc))
        return self.rejected(status, detail)


class StreamedReply:
    """The pieces of a streamed completion, assembled; watches for a reply stuck in a loop."""

    _CHECK_EVERY = 64  # pieces between loop checks: cheap enough, early enough

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.pieces = 0
        self.finish_reason: str | None = None
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.looping = False

    def add(self, chunk: Any) -> bool:
        """Take one chunk; True when the reply has started repeating itself (stop reading)."""
        if not isinstance(chunk, dict):
            raise Transient("a streamed piece is not a JSON object")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.prompt_tokens = _count(usage.get("prompt_tokens"))
            self.completion_tokens = _count(usage.get("completion_tokens"))
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return False
        choice = choices[0]
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(text, str) and text:
            self.parts.append(text)
            self.size += len(text)
            self.pieces += 1
            if self.size > MAX_REPLY_CHARS:
                raise Transient(f"the reply passed {MAX_REPLY_CHARS:,} characters")
            if self.pieces % self._CHECK_EVERY == 0 and is_looping("".join(self.parts[-200:])):
                self.looping = True
                return True
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            self.finish_reason = finish
        return False

    def result(self) -> Reply:
        if not self.pieces and self.finish_reason is None:
            raise Transient("the stream ended without a reply")
        if self.finish_reason == "length" and not self.looping:
            self.looping = is_looping("".join(self.parts[-200:]))  # cut by its budget while looping
        finish = "length" if self.looping else self.finish_reason
        return Reply("".join(self.parts), finish, self.prompt_tokens, self.completion_tokens, looping=self.looping)


def _http_client(timeout: Any) -> Any:
    """The SDK's aiohttp transport (`openai[aiohttp]`), or None for its default httpx one when aiohttp is missing.

    Measured on brief's whole run against the loopback server (bench/run.py): 14.2 -> 11.5 ms of CPU
    per one-chunk article, efficiency at 128 in flight 0.16 -> 0.20. Redirects, proxies from the
    environment and the auth header's removal on a redirect to another host stay httpx's: the
    transport only carries each single request.
    """
    try:
        from openai import DefaultAioHttpClient

        return DefaultAioHttpClient(timeout=timeout)
    except (ImportError, RuntimeError):  # an SDK without the transport, or installed without the extra
        return None


def is_looping(tail: str, min_unit: int = 4, max_unit: int = 120, repeats: int = 6) -> bool:
    """Whether `tail` ends with one short unit written `repeats` times in a row (a model stuck in a loop)."""
    for unit in range(min_unit, max_unit + 1):
        span = unit * repeats
        if span > len(tail):
            break
        end = tail[-span:]
        if end == end[:unit] * repeats and len(set(end[:unit])) > 1:
            return True
    return False


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    return parse_retry_after(response.headers.get("retry-after")) if response is not None else None


def _count(value: Any) -> int:
    """A token count from an untrusted reply: strings, floats, NaN and absurd values become 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value if 0 <= value <= _MAX_TOKENS_REPORTED else 0
    if isinstance(value, float) and math.isfinite(value):
        return int(value) if 0 <= value <= _MAX_TOKENS_REPORTED else 0
    if isinstance(value, str) and value.isdigit() and len(value) < 9:
        return int(value)
    return 0


def parse_completion(completion: Any) -> Reply:
    """Content, finish reason and usage of a chat completion; anything not of that shape is a transient fault."""
    if not isinstance(completion, dict):
        raise Transient(f"unexpected reply body {str(completion)[:80]!r}")
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise Transient("the reply has no choices")
    choice = choices[0]
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    finish = choice.get("finish_reason")
    usage = completion.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Reply(
        content=content if isinstance(content, str) else "",
        finish_reason=finish if isinstance(finish, str) else None,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
    )


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
