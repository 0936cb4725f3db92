"""Atomic file writes: a reader (or a crash) sees the old file or the whole new one, never half."""

from __future__ import annotations

import contextlib
import filecmp
import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

# Temporaries are named by process and a counter (one exclusive open, no random names to draw);
# mkstemp is the fallback when such a name is taken, e.g. left behind by a killed process of the same pid.
_TEMP_NUMBERS = itertools.count()
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def holds(path: Path | str, data: str | bytes) -> bool:
    """Whether `path` already holds exactly `data`."""
    try:
        with open(path, "rb") as handle:
            return handle.read() == (data.encode("utf-8") if isinstance(data, str) else data)
    except OSError:
        return False


def write_atomic(path: Path | str, text: str | bytes, *, durable: bool = False) -> bool:
    """Write via a temp file in the same folder and rename; return False when the file already held `text`.

    An identical file is left alone, so a re-run of an unchanged folder rewrites nothing.
    `durable` also fsyncs the data before the rename (for files whose loss would cost money).
    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    if holds(path, data):
        return False
    with _beside(path) as (fd, tmp):
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    return True


def write_atomic_pieces(path: Path | str, pieces: Iterable[str]) -> bool:
    """write_atomic for a text made piece by piece (never held whole); False when the file held it already."""
    with _beside(path) as (fd, tmp):
        with os.fdopen(fd, "wb") as handle:
            for piece in pieces:
                handle.write(piece.encode("utf-8"))
        if _same_bytes(tmp, path):
            os.unlink(tmp)
            return False
        os.replace(tmp, path)
    return True


@contextlib.contextmanager
def _beside(path: Path | str) -> Iterator[tuple[int, str]]:
    """A new private temporary file beside `path` (fd, name), removed if the block fails."""
    fd, tmp = _temporary(path)
    try:
        yield fd, tmp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _same_bytes(new: str, old: Path | str) -> bool:
    try:
        return filecmp.cmp(new, old, shallow=False)
    except OSError:
        return False


def _temporary(path: Path | str) -> tuple[int, str]:
    """An open, new, private (0600) file beside `path`, creating the folder if need be."""
    folder, name = os.path.split(os.fspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}-{next(_TEMP_NUMBERS)}.tmp")
    try:
        return os.open(tmp, _OPEN_FLAGS, 0o600), tmp
    except FileNotFoundError:
        os.makedirs(folder or ".", exist_ok=True)
    except FileExistsError:
        pass
    return tempfile.mkstemp(dir=folder or ".", prefix=f".{name}.", suffix=".tmp")
