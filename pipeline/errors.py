"""The error tree: every failure brief reports on purpose.

BriefError                 base; str(err) is a one-line message for the user
├── InputError             an article cannot be read or cleaned (names the file)   exit 1
├── ConfigError            a setting is wrong or missing (names the setting)       exit 2
├── CacheError             the cache directory cannot be used
└── ModelError             a model call failed for good
    ├── EndpointRejected   4xx the endpoint will never accept: says what to fix
    ├── RetriesExhausted   transient faults outlasted the attempt budget
    └── InvalidOutput      replies kept failing the JSON schema or content checks
        └── OutputTruncated  the reply hit its token budget (finish_reason "length"): split the input
"""

from __future__ import annotations


class BriefError(Exception):
    """Base of every error brief raises on purpose."""


class InputError(BriefError):
    """An input article is unusable; the message names the file and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class ConfigError(BriefError):
    """A setting is invalid; the message names the setting."""


class CacheError(BriefError):
    """The cache directory cannot be created or written."""


class ModelError(BriefError):
    """A model call failed after everything reasonable was tried."""


class EndpointRejected(ModelError):
    """The endpoint refused the request in a way retrying cannot fix (400/401/403/404)."""

    def __init__(self, status: int, base_url: str, hint: str) -> None:
        super().__init__(f"{status} from {base_url}: {hint}")
        self.status = status
        self.base_url = base_url


class RetriesExhausted(ModelError):
    """Transient failures (429, 5xx, timeouts) outlasted the attempt budget."""


class InvalidOutput(ModelError):
    """The model's replies kept failing validation."""


class OutputTruncated(InvalidOutput):
    """The reply stopped at its output budget even after a retry with a larger one; split the input."""
