"""The seam between a Batch job and the pipeline: one request record and the engine protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

STAGES = ("map", "reduce", "briefing")


@dataclass(frozen=True)
class BatchRequest:
    """One chat-completions request the pipeline needs, keyed by its cache key."""

    custom_id: str  # the cache key of this request
    stage: str  # "map" | "reduce" | "briefing"
    body: dict[str, Any]  # the chat-completions body (model, messages, response_format, max_tokens, ...)
    est_prompt_tokens: int  # our tokenizer's estimate


class StageEngine(Protocol):
    """What a Batch job needs from the pipeline; the pipeline owns caching, validation and outputs."""

    async def pending(self) -> list[BatchRequest]:
        """Return the requests the pipeline needs next that are not cached yet; [] when all are cached."""
        ...

    def accept(self, custom_id: str, body: dict[str, Any]) -> str | None:
        """Validate a chat-completion body as a live reply and cache it; None if ok, else a one-line problem."""
        ...

    async def send_live(self, requests: Sequence[BatchRequest]) -> dict[str, str | None]:
        """Send these requests live now; map custom_id to None (cached) or a one-line problem."""
        ...

    async def finish(self) -> int:
        """Write the outputs exactly as `brief summarize` does (every request is a cache hit); return the exit code."""
        ...
