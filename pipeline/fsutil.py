"""Atomic file writes: a reader (or a crash) sees the old file or the whole new one, never half."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def holds(path: Path, text: str) -> bool:
    """Whether `path` already holds exactly `text`."""
    try:
        return path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def write_atomic(path: Path, text: str, *, durable: bool = False) -> bool:
    """Write via a temp file in the same folder and rename; return False when the file already held `text`.

    An identical file is left alone, so a re-run of an unchanged folder rewrites nothing.
    `durable` also fsyncs the data before the rename (for files whose loss would cost money).
    """
    if holds(path, text):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
