"""Atomic file writes: a reader (or a crash) sees the old file or the whole new one, never half."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def holds(path: Path, data: str | bytes) -> bool:
    """Whether `path` already holds exactly `data`."""
    try:
        return path.read_bytes() == (data.encode("utf-8") if isinstance(data, str) else data)
    except OSError:
        return False


def write_atomic(path: Path, text: str | bytes, *, durable: bool = False) -> bool:
    """Write via a temp file in the same folder and rename; return False when the file already held `text`.

    An identical file is left alone, so a re-run of an unchanged folder rewrites nothing.
    `durable` also fsyncs the data before the rename (for files whose loss would cost money).
    """
    if holds(path, text):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8") if isinstance(text, str) else text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
