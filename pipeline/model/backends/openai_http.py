"""The OpenAI-compatible HTTP backend: one chat-completions attempt through the openai SDK."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from typing import TYPE_CHECKING, Any

from pipeline.errors import EndpointRejected, EndpointUnavailable
from pipeline.model.backends import FormatRefused, Reply, Transient
from pipeline.model.retry import parse_retry_after
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
# Token counts beyond this are not counts: a broken or hostile server.
_MAX_TOKENS_REPORTED = 10_000_000


class OpenAIHTTPBackend:
    """Chat completions over HTTP with the official SDK (its own retries off: ours are composed above)."""

    def __init__(
        self, base_url: str, api_key: str | None, timeout: float, connect_timeout: float, max_connections: int = 64
    ) -> None:
        self._url = base_url
        self.base_url = public_url(base_url) or base_url
        self.api_key = api_key
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self._sdk: AsyncOpenAI | None = None

    def sdk(self) -> AsyncOpenAI:
        if self._sdk is None:
            from openai import AsyncOpenAI, Timeout

            self._sdk = AsyncOpenAI(
                base_url=self._url,
                # The SDK insists on a key; a server the user did not name gets a placeholder, never theirs.
                api_key=self.api_key or "sk-no-key-required",
                max_retries=0,  # tenacity retries above; two layers would multiply attempts
                timeout=Timeout(self.timeout, connect=self.connect_timeout),
            )
        return self._sdk

    async def aclose(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None

    def rejected(self, status: int, detail: str) -> EndpointRejected:
        hint = _HINTS.get(status, _HINTS[400]).format(detail=detail[:200])
        return EndpointRejected(status, self.base_url, hint)

    async def list_models(self) -> list[str]:
        import openai

        try:
            async with asyncio.timeout(self.timeout):
                page = await self.sdk().models.list()
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
        import openai

        try:
            async with asyncio.timeout(self.timeout):
                # The SDK's raw post (its documented route for custom bodies) sends our JSON as is:
                # the typed create() walks every message and schema through a slow transform.
                completion = await self.sdk().post("/chat/completions", cast_to=object, body=body)
        except TimeoutError:
            raise Transient(f"no complete reply within {self.timeout:g} s") from None
        except openai.APITimeoutError:
            raise Transient(f"no reply within {self.timeout:g} s") from None
        except openai.APIConnectionError as exc:
            raise Transient(f"connection failed: {_connection_reason(exc)}") from None
        except openai.APIStatusError as exc:
            raise self._classify(exc, "response_format" in body) from None
        except (ValueError, UnicodeDecodeError, TypeError) as exc:  # a 200 whose body is not JSON
            raise Transient(f"malformed reply body ({type(exc).__name__})") from None
        return parse_completion(completion)

    def _classify(self, exc: Any, structured: bool) -> Exception:
        status = int(exc.status_code)
        detail = _detail(exc)
        if structured and status in (400, 422, 500) and _FORMAT_REFUSAL.search(detail):
            return FormatRefused(f"HTTP {status}: {detail[:120]}")
        if status in RETRYABLE_STATUS:
            return Transient(f"HTTP {status}: {detail[:120]}", _retry_after(exc))
        return self.rejected(status, detail)


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
