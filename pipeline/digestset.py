"""A set of strings held as 8-byte digests, for indexes that grow with the number of articles.

A `set[str]` of 100,000 article ids holds ~15 MB (each id a Python string plus its slot); this
holds ~1 MB. The price is that two different strings may share a digest, so `in` can answer yes
for a string never added (about n² / 2⁶⁵: 3 in 10¹⁰ at 100,000 members). Use it only where such
an answer costs nothing but a renamed output, never where it could let brief overwrite a file.
"""

from __future__ import annotations

import bisect
import hashlib
from array import array

_MIN_MERGE = 4096
_MERGE_SHARE = 8  # new digests are merged once they are an eighth of the sorted ones: n log n in all


def _digest(text: str) -> int:
    # blake2b, not hash(): the same answer in every process (hash() of a str is seeded per process).
    raw = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(raw, "little", signed=True)


class DigestSet:
    """Strings by digest: a sorted array, plus a small set of the newest until they are merged in."""

    def __init__(self) -> None:
        self._sorted = array("q")
        self._recent: set[int] = set()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and self._has(_digest(text))

    def add(self, text: str) -> None:
        digest = _digest(text)
        if self._has(digest):
            return
        self._recent.add(digest)
        if len(self._recent) >= max(_MIN_MERGE, len(self._sorted) // _MERGE_SHARE):
            self._sorted = array("q", sorted([*self._sorted, *self._recent]))
            self._recent.clear()

    def _has(self, digest: int) -> bool:
        if digest in self._recent:
            return True
        at = bisect.bisect_left(self._sorted, digest)
        return at < len(self._sorted) and self._sorted[at] == digest
