"""JSON records appended to an unnamed temporary file and read back by offset.

How a large run keeps per-article records off the heap: memory holds an offset per record, the
disk the record. The file has no name (tempfile.TemporaryFile), so a killed run leaves nothing.
"""

from __future__ import annotations

import json
import tempfile
from typing import IO, Any

from pipeline.jsonbytes import compact

# What a record that no longer reads back raises (a disk error, a damaged line, a foreign shape).
UNREADABLE = (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError)


class SpillFile:
    """One record per line; `append` gives the offset that `read` takes."""

    def __init__(self, prefix: str) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix=prefix)  # noqa: SIM115  # closed by close()

    def append(self, data: Any) -> int:
        self._file.seek(0, 2)
        offset = self._file.tell()
        self._file.write(compact(data) + b"\n")
        return offset

    def read(self, offset: int) -> Any:
        """The record written at `offset`; raises one of UNREADABLE when it no longer reads."""
        self._file.seek(offset)
        return json.loads(self._file.readline().decode("utf-8"))

    def close(self) -> None:
        self._file.close()
