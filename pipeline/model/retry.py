"""Retry policy for model requests, composed from tenacity's strategies."""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any

from tenacity import wait_exponential_jitter
from tenacity.wait import wait_base

# A server asking for more than this is treated as asking for this much: the run must move on.
MAX_RETRY_AFTER_S = 120.0
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, min(seconds, MAX_RETRY_AFTER_S)) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(delta, MAX_RETRY_AFTER_S))


class wait_retry_after(wait_base):
    """The wait the server asked for (Retry-After) when the last failure carries one, else `fallback`."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: Any) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        asked = getattr(error, "retry_after", None)
        return float(asked) if asked is not None else float(self.fallback(retry_state))


def default_wait() -> wait_base:
    """Retry-After when given, else capped exponential backoff with jitter."""
    return wait_retry_after(
        wait_exponential_jitter(multiplier=BACKOFF_INITIAL_S, max=BACKOFF_MAX_S, jitter=BACKOFF_INITIAL_S)
    )
