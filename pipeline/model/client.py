"""Validated JSON completions over any backend: cache, JSON-mode ladder, retries, corrective retry, stats.

Transport-independent: the backend makes one attempt; this module decides what to send, whether
to retry (tenacity strategies: Retry-After, else capped jittered backoff; never 400/401/403/404),
which JSON mode to use, whether a reply is valid, and what is cached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from pipeline.cache import cache_key
from pipeline.errors import (
    Deferred,
    EndpointRejected,
    EndpointUnavailable,
    InvalidOutput,
    ModelError,
    OutputTruncated,
    RetriesExhausted,
)
from pipeline.model.backends import Backend, FormatRefused, Reply, Transient, Unreachable
from pipeline.model.jsonmode import FALLBACK, request_arguments
from pipeline.model.retry import default_wait
from pipeline.model.validate import Check, Verdict, check_data, check_reply, extract_json
from pipeline.records import Usage

if TYPE_CHECKING:
    from pipeline.cache import Cache
    from pipeline.config import Settings

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


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
    # A content rule asked for once more, then waived: a small model that keeps answering in Chinese
    # still gives an article, and the faithfulness checks show the reader what is untranslated.
    soft_check: Check | None = field(default=None, compare=False)
    salvageable: tuple[str, ...] = ()  # arrays whose invalid items are dropped instead of failing the reply


@dataclass(frozen=True)
class CallResult:
    data: dict[str, Any]
    usage: Usage  # what this call cost in this run (a cache hit: one hit, no request)
    latency_s: float
    cached: bool
    salvaged: int = 0


@dataclass
class ClientStats:
    """Reliability totals over every call of a run, for run.json."""

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
    waived_checks: int = 0  # replies kept though a soft check failed twice (see JsonRequest.soft_check)
    json_mode: str = "schema"
    waits_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "waits_s"}
        data["waited_s"] = round(sum(self.waits_s), 3)
        return data


# A schema only an enforcing server makes a model follow: the natural answer ("blue") is not allowed.
SCHEMA_PROBE = JsonRequest(
    prompt_id="probe.schema",
    prompt_hash="1",
    messages=[
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "What colour is a clear daytime sky? Put the one-word answer in the field colour."},
    ],
    schema_name="probe",
    schema={
        "type": "object",
        "properties": {"colour": {"type": "string", "enum": ["zq-probe-7"]}},
        "required": ["colour"],
        "additionalProperties": False,
    },
    max_tokens=24,
    temperature=0.0,
)


def combined_check(request: JsonRequest) -> Check | None:
    """The hard and the soft content rule as one."""
    hard, soft = request.check, request.soft_check
    if soft is None or hard is None:
        return soft or hard
    return lambda data: hard(data) or soft(data)


def estimated_usage(reply: Reply, body: dict[str, Any]) -> Reply:
    """Token counts for a server that reports none (llama-cpp-python's streams): our tokenizer's estimate."""
    from dataclasses import replace

    from pipeline.ingest.tokens import count_tokens

    prompt = sum(count_tokens(str(m.get("content", ""))) for m in body.get("messages", []))
    return replace(
        reply, prompt_tokens=prompt, completion_tokens=reply.completion_tokens or count_tokens(reply.content)
    )


def wrong_shape(content: str, schema: dict[str, Any]) -> bool:
    """A reply that is not even the object asked for: not JSON, or missing the schema's required fields."""
    try:
        data = extract_json(content)
    except (ValueError, RecursionError):
        return True
    if not isinstance(data, dict):
        return True
    return any(name not in data for name in schema.get("required", ()))


class ModelClient:
    """Validated JSON completions from one backend and model, cached and retried."""

    def __init__(
        self,
        backend: Backend,
        cache: Cache | None,
        model: str = "",
        *,
        json_mode: str = "auto",
        max_attempts: int = 5,
        concurrency: int = 8,
        sleep: Sleep | None = None,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.model = model
        self.json_mode = "schema" if json_mode == "auto" else json_mode
        self._auto = json_mode == "auto"
        self._sleep: Sleep = sleep or asyncio.sleep
        # The retry policy as tenacity's strategies (stateless: one for every request); the loop is ours.
        self._policy = AsyncRetrying(stop=stop_after_attempt(max_attempts), wait=default_wait(), reraise=False)
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self.stats = ClientStats(json_mode=self.json_mode)
        # Set once a 401/403/404, or an endpoint that does not answer at all, shows no request can succeed.
        self.fatal: EndpointRejected | EndpointUnavailable | None = None
        # Batch jobs: cache misses are recorded here (key -> request) instead of sent.
        self.deferred: dict[str, JsonRequest] | None = None

    @classmethod
    def for_settings(cls, settings: Settings, cache: Cache | None, sleep: Sleep | None = None) -> ModelClient:
        """A client for the OpenAI-compatible endpoint in `settings`."""
        from pipeline.model.backends.openai_http import OpenAIHTTPBackend
        from pipeline.model.endpoint import profile_for

        profile = profile_for(settings)
        backend = OpenAIHTTPBackend(
            settings.base_url or "",
            settings.api_key_for_endpoint,
            profile.deadlines,
            stream=settings.stream,
            extra_body=profile.extra_body,
        )
        return cls(
            backend,
            cache,
            settings.model or "",
            json_mode=settings.json_mode,
            max_attempts=settings.max_attempts,
            concurrency=settings.concurrency,
            sleep=sleep,
        )

    @property
    def base_url(self) -> str:
        return self.backend.base_url

    async def aclose(self) -> None:
        await self.backend.aclose()

    async def list_models(self) -> list[str]:
        return await self.backend.list_models()

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

    def cached(self, request: JsonRequest, key: str | None = None) -> CallResult | None:
        """The cached result of `request`, re-checked against today's rules, or None."""
        if self.cache is None:
            return None
        hit = self.cache.get(key or self.key_for(request))
        self.stats.corrupt_cache_entries = self.cache.corrupt_reads
        if hit is None:
            return None
        verdict = self._recheck(hit, request)
        if verdict.data is None:
            return None
        return CallResult(verdict.data, Usage(cache_hits=1), 0.0, cached=True, salvaged=verdict.salvaged)

    def _recheck(self, hit: dict[str, Any], request: JsonRequest) -> Verdict:
        data = hit.get("data")
        if not isinstance(data, dict):
            return Verdict(None, "not an object")
        return check_data(data, request.schema, request.check, request.salvageable)

    def store(self, key: str, request: JsonRequest, data: dict[str, Any], usage: Usage) -> None:
        if self.cache is not None:
            self.cache.put(
                key,
                {
                    "data": data,
                    "model": self.model,
                    "prompt": request.prompt_id,
                    "usage": [usage.prompt_tokens, usage.completion_tokens],
                },
            )

    async def complete_json(self, request: JsonRequest) -> CallResult:
        """A validated JSON reply for `request`, from the cache when possible."""
        self.stats.calls += 1
        key = self.key_for(request)
        hit = self.cached(request, key)
        if hit is not None:
            self.stats.cache_hits += 1
            return hit
        if self.cache is not None:
            self.stats.cache_misses += 1
        if self.deferred is not None:
            self.deferred.setdefault(key, request)
            raise Deferred(f"{request.prompt_id}: left for the batch job")
        if self.fatal is not None:
            self.stats.failures += 1
            raise self.fatal
        try:
            result = await self._complete(request)
        except ModelError as exc:
            self.stats.failures += 1
            if isinstance(exc, EndpointRejected) and exc.fatal:
                self.fatal = exc
            raise
        self.store(key, request, result.data, result.usage)
        return result

    # -- one call: validation and output-budget retries ---------------------------------------

    async def _complete(self, request: JsonRequest) -> CallResult:
        started = time.monotonic()
        messages = list(request.messages)
        max_tokens = request.max_tokens
        usage = Usage()
        corrected = enlarged = False
        last_content: str | None = None
        while True:
            reply, sent, mode = await self._send(request, messages, max_tokens)
            usage = usage + Usage(sent, 0, reply.prompt_tokens, reply.completion_tokens)
            if reply.finish_reason == "length" or reply.looping:
                # A looping reply gains nothing from a bigger budget; a long honest one may.
                if enlarged or reply.looping:
                    raise OutputTruncated(f"reply cut at {max_tokens} tokens ({request.prompt_id})")
                enlarged, max_tokens = True, max_tokens * 2
                log.info("%s: reply hit the output budget; retrying with %d tokens", request.prompt_id, max_tokens)
                continue
            verdict = check_reply(reply.content, request.schema, combined_check(request), request.salvageable)
            if verdict.data is None and request.soft_check is not None and (corrected or reply.content == last_content):
                waived = check_reply(reply.content, request.schema, request.check, request.salvageable)
                if waived.data is not None:
                    self.stats.waived_checks += 1
                    log.info("%s: %s, again; kept for the checks to flag", request.prompt_id, verdict.problem)
                    verdict = waived
            if verdict.data is not None:
                latency = time.monotonic() - started
                return CallResult(verdict.data, usage, latency, cached=False, salvaged=verdict.salvaged)
            self.stats.invalid_replies += 1
            shapeless = wrong_shape(reply.content, request.schema)
            if corrected and shapeless and self._auto and mode == "schema":
                # Twice not even the object asked for, in schema mode: the server took json_schema but does
                # not apply it (2025 llama-server builds do this). The next mode down shows the model the schema.
                self.step_down("schema", "it accepts json_schema but does not apply it")
                messages, last_content = list(request.messages), None
                continue
            # A corrective retry that got the same reply again would only repeat itself.
            if corrected or reply.content == last_content:
                raise InvalidOutput(f"{request.prompt_id}: {verdict.problem}")
            corrected, last_content = True, reply.content
            log.info("%s: invalid reply (%s); asking once more", request.prompt_id, verdict.problem)
            messages = [
                *request.messages,
                {"role": "assistant", "content": reply.content[:2000]},
                {
                    "role": "user",
                    "content": f"That reply was rejected: {verdict.problem}. "
                    "Reply again with only the corrected JSON object.",
                },
            ]

    # -- one request: transient retries and the JSON-mode ladder -----------------------------

    async def _send(
        self, request: JsonRequest, messages: list[dict[str, str]], max_tokens: int
    ) -> tuple[Reply, int, str]:
        """Send until a reply arrives; returns it, the number of requests made and the JSON mode used."""
        sent = 0
        while True:
            mode = self.json_mode
            try:
                reply, tries = await self._send_with_retries(request, messages, max_tokens, mode)
                return reply, sent + tries, mode
            except FormatRefused as refusal:
                sent += 1
                self.step_down(mode, str(refusal))

    async def probe_schema(self) -> bool:
        """Whether the server really enforces json_schema: ask for an enum value no model would write unasked.

        A server that refuses or ignores it moves the run down the JSON-mode ladder before any article.
        """
        if self.json_mode != "schema":
            return False
        body = self.body(SCHEMA_PROBE, SCHEMA_PROBE.messages, SCHEMA_PROBE.max_tokens, "schema")
        self.stats.requests += 1
        try:
            reply = await self.backend.send(body)
        except FormatRefused as exc:
            self.step_down("schema", str(exc))
            return False
        except Transient as exc:
            log.info("%s: schema probe failed (%s); keeping json mode %s", self.base_url, exc, self.json_mode)
            return False
        verdict = check_reply(reply.content, SCHEMA_PROBE.schema)
        if verdict.data is not None:
            return True
        if self._auto:
            self.step_down("schema", "it accepts json_schema but does not apply it")
        return False

    def step_down(self, mode: str, reason: str) -> None:
        """Use the next JSON mode down for the rest of the run, or fail when that is not allowed."""
        if not self._auto or mode not in FALLBACK:
            raise EndpointRejected(
                400,
                self.base_url,
                f"it does not accept --json-mode {mode} ({reason}); try --json-mode object or prompt",
            )
        if self.json_mode == mode:  # another call may have stepped down already
            self.json_mode = self.stats.json_mode = FALLBACK[mode]
            log.warning(
                "%s refuses response_format %s; using json mode %s for this run", self.base_url, mode, self.json_mode
            )

    def body(
        self, request: JsonRequest, messages: Sequence[dict[str, str]], max_tokens: int, mode: str
    ) -> dict[str, Any]:
        """The chat-completions request body for a JSON mode."""
        arguments = request_arguments(list(messages), request.schema_name, request.schema, mode, describe_schema=False)
        return {"model": self.model, "max_tokens": max_tokens, "temperature": request.temperature, **arguments}

    async def _send_with_retries(
        self, request: JsonRequest, messages: list[dict[str, str]], max_tokens: int, mode: str
    ) -> tuple[Reply, int]:
        body = self.body(request, messages, max_tokens, mode)
        # tenacity's stop and wait strategies read tenacity's record of the attempts; the loop is ours
        # because iterating an AsyncRetrying per request leaves ~33 objects in reference cycles (its thread-local
        # state, bound methods, a Future with a lock): at 32 requests in flight the cyclic collector
        # freed them in 6-8 ms pauses of the event loop every half second (bench/stallprobe).
        state = RetryCallState(self._policy, None, (), {})
        while True:
            if state.attempt_number > 1:
                self.stats.retries += 1
            try:
                return await self._post(body), state.attempt_number
            except Transient as exc:
                state.set_exception((type(exc), exc, exc.__traceback__))
                if self._policy.stop(state):
                    last = exc
                    break
            seconds = state.upcoming_sleep = self._policy.wait(state)  # Retry-After, else jittered backoff
            state.idle_for += seconds
            await self._record_sleep(seconds)
            state.prepare_for_next_attempt()
        tries = state.attempt_number
        if isinstance(last, Unreachable):  # nothing there at all: every request would fail alike
            self.fatal = self.fatal or EndpointUnavailable(f"cannot reach {self.base_url} ({last})")
            raise self.fatal from None
        raise RetriesExhausted(f"gave up after {tries} attempts against {self.base_url}: {last}") from None

    async def _record_sleep(self, seconds: float) -> None:
        self.stats.waits_s.append(seconds)
        log.info("retrying in %.1f s", seconds)
        await self._sleep(seconds)

    async def _post(self, body: dict[str, Any]) -> Reply:
        """One request, holding a concurrency slot only while it is in flight."""
        async with self._semaphore:
            self.stats.requests += 1
            try:
                reply = await self.backend.send(body)
            except Transient as exc:
                log.info("%s: %s", self.base_url, exc)
                raise
        if not reply.prompt_tokens and reply.content:
            reply = estimated_usage(reply, body)
        self.stats.prompt_tokens += reply.prompt_tokens
        self.stats.completion_tokens += reply.completion_tokens
        return reply
