"""The backend seam: one chat attempt against some model server, and nothing else.

Everything above a backend (cache, validation, corrective retry, the JSON-mode ladder, retry
policy, statistics) is written once in `pipeline.model.client`; a backend only sends one request
body and reports what came back, classifying failures into the three kinds below. The
OpenAI-compatible HTTP backend is one implementation; tests use an in-process one.

    Backend.send(body)       -> Reply            one attempt, within the backend's deadlines
    Backend.list_models()    -> list[str]
    Backend.aclose()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.errors import EndpointRejected

__all__ = ["Backend", "Deadlines", "EndpointRejected", "FormatRefused", "Reply", "Transient", "Unreachable"]


@dataclass(frozen=True)
class Reply:
    """What one attempt produced: the reply text, why it stopped, and the tokens it cost."""

    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    looping: bool = False  # cut short because the reply started repeating itself


@dataclass(frozen=True)
class Deadlines:
    """How long one attempt may take: to connect, to the first token, between tokens, and in all."""

    total: float
    first_token: float
    idle: float
    connect: float = 10.0
    # A local server works through its queue one request at a time: waiting behind replies that are
    # streaming is progress, so the first-token limit counts from the endpoint's last token and
    # `total` from this reply's first token. A hosted API's clocks start when the request is sent.
    queued: bool = False


class Transient(Exception):
    """A failure worth retrying (429, 5xx, timeout, connection, a malformed reply), with the server's wait."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unreachable(Transient):
    """Nothing answered at all (connection refused, no route, DNS): retried, then the run stops."""


class FormatRefused(Exception):
    """The server does not take this response_format; the next JSON mode down may work."""


class Backend(Protocol):
    """One model server. `send` makes exactly one attempt; retries are the caller's business."""

    base_url: str  # shown to the user: never holds credentials

    async def send(self, body: dict[str, Any]) -> Reply: ...

    async def list_models(self) -> list[str]: ...

    async def aclose(self) -> None: ...
