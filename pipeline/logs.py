"""Logging to stderr at the chosen verbosity, with secrets scrubbed from every record."""

from __future__ import annotations

import logging
import sys

_LEVELS = {0: logging.WARNING, 1: logging.INFO}
_REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Replace any secret in a formatted record; third-party debug logs (httpx, openai) included."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def add(self, secret: str) -> None:
        # Short values would redact ordinary words; real keys are long.
        if secret and len(secret) >= 8 and secret not in self.secrets:
            self.secrets.append(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        for secret in self.secrets:
            message = message.replace(secret, _REDACTED)
        record.msg, record.args = message, None
        return True


_FILTER = RedactSecrets()


def redact(secret: str) -> None:
    """Scrub this value from everything logged from now on."""
    _FILTER.add(secret)


def configure_logging(verbosity: int) -> None:
    """-v shows what brief decides (INFO); -vv adds HTTP-level DEBUG from httpx and openai."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("brief %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_FILTER)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(verbosity, logging.DEBUG))
