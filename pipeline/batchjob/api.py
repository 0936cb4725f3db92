"""The provider calls of a Batch job (Files + Batches API through the openai client), with tenacity retries.

Build the client with `max_retries=0`: the retries here (408/429/5xx, timeouts, connection
errors; Retry-After honoured) would otherwise stack on the SDK's own. A 4xx that will never
succeed becomes a BatchJobError that says what to fix.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import openai
from openai.types import Batch
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from pipeline.batchjob.jsonl import one_line
from pipeline.batchjob.manifest import BatchJobError

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

TRANSIENT = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError, openai.InternalServerError)
_LIST_LIMIT = 1000  # how far back to look for our own upload or batch after a crash
_MAX_RETRY_AFTER = 300.0


def _retry_after(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return min(float(value), _MAX_RETRY_AFTER) if value is not None else None
    except ValueError:
        return None


class _Wait:
    """Exponential backoff with jitter, or the server's Retry-After when it asks for longer."""

    def __init__(self) -> None:
        self.backoff = wait_exponential_jitter(initial=1, max=30)

    def __call__(self, state: RetryCallState) -> float:
        backoff = self.backoff(state)
        asked = _retry_after(state.outcome.exception() if state.outcome else None)
        return max(backoff, asked) if asked is not None else backoff


def _refusal(what: str, err: openai.APIStatusError) -> BatchJobError:
    message = one_line(getattr(err, "message", err))
    if err.status_code in (401, 403):
        hint = "check OPENAI_API_KEY for this endpoint"
    elif err.status_code == 404:
        hint = "the endpoint may have no Files/Batches API (vllm serve, SGLang ≥ 0.4.8): use `brief batch import`"
    else:
        hint = "fix the request or the job and resume"
    return BatchJobError(f"{what}: HTTP {err.status_code}: {message} ({hint})")


class Provider:
    """The Files and Batches calls a job makes, each retried on transient faults."""

    def __init__(self, client: openai.AsyncOpenAI, *, sleep: Sleep = asyncio.sleep, attempts: int = 5) -> None:
        self.client = client
        self.sleep = sleep
        self.attempts = attempts

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=_Wait(),
            retry=retry_if_exception_type(TRANSIENT),
            sleep=self.sleep,
            reraise=True,
        )

        async def attempt() -> T:  # a real coroutine function: tenacity awaits only those
            return await fn()

        try:
            return cast(T, await retrying(attempt))
        except openai.APIStatusError as err:
            if isinstance(err, TRANSIENT):
                raise BatchJobError(f"{what}: still failing after {self.attempts} attempts: {one_line(err)}") from err
            raise _refusal(what, err) from err
        except TRANSIENT as err:
            raise BatchJobError(f"{what}: still failing after {self.attempts} attempts: {one_line(err)}") from err

    async def upload(self, path: Path, remote_name: str) -> str:
        """Upload a request file with purpose "batch"; return its file id."""

        async def once() -> str:
            with path.open("rb") as handle:
                uploaded = await self.client.files.create(
                    file=(remote_name, handle, "application/jsonl"), purpose="batch"
                )
            return uploaded.id

        return await self._call(f"uploading {path.name}", once)

    async def find_file(self, remote_name: str, size: int) -> str | None:
        """Our earlier upload of this file, if the endpoint lists it (a crash hit before its id was saved)."""
        try:
            seen = 0
            async for item in self.client.files.list(purpose="batch"):
                if item.filename == remote_name and item.bytes == size:
                    return item.id
                seen += 1
                if seen >= _LIST_LIMIT:
                    break
        except openai.OpenAIError:
            return None  # no listing here: uploading again is the only way on
        return None

    async def create(self, file_id: str, *, url: str, window: str, metadata: dict[str, str]) -> Batch:
        """Create a batch over an uploaded file."""
        return await self._call(
            f"creating a batch for {file_id}",
            lambda: self.client.batches.create(
                input_file_id=file_id,
                endpoint=cast(Any, url),
                completion_window=cast(Any, window),
                metadata=metadata,
            ),
        )

    async def find_batch(self, file_id: str) -> Batch | None:
        """Our earlier batch over this file, if the endpoint lists batches."""
        try:
            seen = 0
            async for batch in self.client.batches.list(limit=100):
                if batch.input_file_id == file_id:
                    return batch
                seen += 1
                if seen >= _LIST_LIMIT:
                    break
        except openai.OpenAIError:
            return None
        return None

    async def retrieve(self, batch_id: str) -> Batch:
        return await self._call(f"checking batch {batch_id}", lambda: self.client.batches.retrieve(batch_id))

    async def cancel(self, batch_id: str) -> Batch:
        return await self._call(f"cancelling batch {batch_id}", lambda: self.client.batches.cancel(batch_id))

    async def download(self, file_id: str, dest: Path) -> None:
        """Stream a result file to dest (temporary name first, so a partial download is never taken for whole)."""
        temp = dest.with_name(f".{dest.name}.part")

        async def once() -> None:
            async with self.client.files.with_streaming_response.content(file_id) as response:
                with temp.open("wb") as out:
                    async for chunk in response.iter_bytes():
                        out.write(chunk)

        try:
            await self._call(f"downloading {file_id}", once)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        os.replace(temp, dest)
