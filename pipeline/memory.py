"""Give the memory a long run has freed back to the system as it goes.

glibc's malloc keeps freed chunks for reuse; in a run over thousands of articles the transient
allocations of each article (its text, its request, its reply) interleave with the few that live
on (ids, run.json rows), so the freed chunks sit in holes the heap cannot shrink past, and the
process's resident memory grows by a kilobyte or two per article although nothing holds that
memory. `malloc_trim(0)` hands every free page back (madvise), wherever it is in the heap; a call
costs 0.3–2 ms here, so a long loop calls it every few hundred items, not every one.

On a C library without malloc_trim (musl, macOS, Windows) this does nothing.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable

EVERY = 256  # items between two trims: ~1 ms per 256 articles


@functools.cache
def _trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only where it can help: ~2 ms to import

    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def give_back() -> bool:
    """Return the C heap's free pages to the system; whether any were returned."""
    trim = _trim()
    return bool(trim(0)) if trim is not None else False


class GiveBack:
    """Counts items of a long loop and gives memory back every `every` of them (thread-safe)."""

    def __init__(self, every: int | None = None) -> None:
        self.every = max(1, EVERY if every is None else every)
        self.trims = 0
        self._count = 0
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            self._count += 1
            due = self._count % self.every == 0
            if due:
                self.trims += 1
        if due:
            give_back()
