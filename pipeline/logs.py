"""Logging to stderr at the chosen verbosity, with secrets scrubbed from every record."""

from __future__ import annotations

import logging
import sys

from pipeline.secrets import scrub
from pipeline.terminal import printable

_LEVELS = {0: logging.WARNING, 1: logging.INFO}


class ScrubRecords(logging.Filter):
    """Scrub secrets and terminal control sequences from every record, third-party ones (httpx, openai) included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = printable(scrub(record.getMessage()))
        record.msg, record.args = message, None
        return True


def configure_logging(verbosity: int) -> None:
    """-v shows what brief decides (INFO); -vv adds HTTP-level DEBUG from httpx and openai."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("brief %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubRecords())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(verbosity, logging.DEBUG))
