"""The seam between a Batch job and the pipeline: one request record and the engine protocol."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

STAGES = ("map", "reduce", "briefing")


@dataclass(frozen=True)
class BatchRequest:
    """One chat-completions request the pipeline needs, keyed by its cache key."""

    custom_id: str  # the cache key of this request
    stage: str  # "map" | "reduce" | "briefing"
    body: dict[str, Any]  # the chat-completions body (model, messages, response_format, max_tokens, ...)
    est_prompt_tokens: int  # our tokenizer's estimate


@dataclass(frozen=True)
class LiveReply:
    """A request answered live by the fallback, with the tokens its reply reported."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


# What send_live says of one request: None or a LiveReply when it was answered, else a one-line problem.
LiveOutcome = str | LiveReply | None


@runtime_checkable
class StageIndex(Protocol):
    """Pending requests that know their ids and stages without reading every body (a spool on disk)."""

    def stages(self) -> Mapping[str, str]:
        """custom_id → stage of every request, in order."""
        ...


class StageEngine(Protocol):
    """What a Batch job needs from the pipeline; the pipeline owns caching, validation and outputs."""

    async def pending(self) -> Iterable[BatchRequest]:
        """The requests the pipeline needs next that are not cached yet (none when all are cached).

        May be streamed from disk rather than held: it can be iterated more than once, and a
        StageIndex gives the ids without the bodies.
        """
        ...

    def accept(self, custom_id: str, body: dict[str, Any]) -> str | None:
        """Validate a chat-completion body as a live reply and cache it; None if ok, else a one-line problem."""
        ...

    async def send_live(self, requests: Sequence[BatchRequest]) -> dict[str, LiveOutcome]:
        """Send these requests live now; map custom_id to None or a LiveReply (answered) or a one-line problem."""
        ...

    async def finish(self) -> int:
        """Write the outputs exactly as `brief summarize` does (every request is a cache hit); return the exit code."""
        ...


def stages_of(requests: Iterable[BatchRequest]) -> Mapping[str, str]:
    """custom_id → stage of pending requests: from a StageIndex when there is one, else by reading them."""
    if isinstance(requests, StageIndex):
        return requests.stages()
    return {request.custom_id: request.stage for request in requests}
