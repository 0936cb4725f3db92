"""The error tree: every failure brief reports on purpose, each with its exit code.

BriefError                   base; str(err) is a one-line message for the user        exit 1
├── InputError               an article cannot be read or cleaned (names the file)   exit 1
│   └── DuplicateInput       the same story again (another feed, an earlier run): skipped, not a failure
├── ConfigError              a setting is wrong or missing (names the setting)       exit 2
│   └── OutputError          the output folder cannot be used, or would overwrite an input
├── CacheError               the cache directory cannot be used                      exit 2
├── ResourceError            a file shipped with brief is missing or damaged         exit 2
└── ModelError               a model call failed for good                            exit 1
    ├── EndpointUnavailable  the endpoint cannot be reached at all (wrong URL, down)   exit 2
    ├── EndpointRejected     4xx the endpoint will never accept: says what to fix    exit 2 (401/403/404), 1 (400)
    ├── Deferred             the request went into a Batch job file instead (brief batch)
    ├── RetriesExhausted     transient faults outlasted the attempt budget
    └── InvalidOutput        replies kept failing the JSON schema or content checks
        └── OutputTruncated  the reply hit its token budget (finish_reason "length"): split the input

Exit codes: 0 all inputs succeeded; 1 some input failed (the rest are written); 2 the run could
not start (usage, configuration, endpoint); 130 interrupted (SIGINT or SIGTERM).
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class BriefError(Exception):
    """Base of every error brief raises on purpose."""

    exit_code = EXIT_FAILED


class InputError(BriefError):
    """An input article is unusable; the message names the file and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class DuplicateInput(InputError):
    """The same story (same text after cleaning) was already summarised, in this run or, with --new, before."""


class ConfigError(BriefError):
    """A setting is invalid; the message names the setting."""

    exit_code = EXIT_USAGE


class OutputError(ConfigError):
    """The output folder cannot be written, or writing it would overwrite something brief did not create."""


class CacheError(BriefError):
    """The cache directory cannot be created or written."""

    exit_code = EXIT_USAGE


class ResourceError(BriefError):
    """A data file or prompt shipped with brief is missing or damaged (reinstall brief)."""

    exit_code = EXIT_USAGE


class InterruptedEarly(BriefError):
    """Ctrl-C or SIGTERM while the run was still starting (inputs, endpoint checks): nothing was written."""

    exit_code = EXIT_INTERRUPTED


class ModelError(BriefError):
    """A model call failed after everything reasonable was tried."""


class EndpointUnavailable(ModelError):
    """Nothing usable answers at the configured endpoint: the run cannot start."""

    exit_code = EXIT_USAGE


class EndpointRejected(ModelError):
    """The endpoint refused the request in a way retrying cannot fix (400/401/403/404)."""

    def __init__(self, status: int, base_url: str, hint: str) -> None:
        super().__init__(f"{status} from {base_url}: {hint}")
        self.status = status
        self.base_url = base_url
        # A wrong key, a forbidden model or a wrong path fails every request alike: stop the run.
        self.fatal = status in (401, 403, 404)
        self.exit_code = EXIT_USAGE if self.fatal else EXIT_FAILED


class Deferred(ModelError):
    """A request was recorded for a Batch job instead of sent; its result will come from the cache later."""


class RetriesExhausted(ModelError):
    """Transient failures (429, 5xx, timeouts) outlasted the attempt budget."""


class InvalidOutput(ModelError):
    """The model's replies kept failing validation."""


class OutputTruncated(InvalidOutput):
    """The reply stopped at its output budget even after a retry with a larger one; split the input."""


class PromptTooLong(OutputTruncated):
    """The server's context window cannot hold this prompt (a small num_ctx, a 4k model): split the input."""
