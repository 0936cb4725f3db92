"""The pipeline's pending requests, spooled to a temporary file as a deferred run finds them.

A deferred run over N articles asks for about N requests, each carrying its article's text.
Held as a list that is a few KB per article; here each request is written out as it is found
and only its id and the index of its "shape" (its stage and the request without its messages:
schema, check, budget, shared by every request of one prompt) stay in memory, one dict entry per
request, which is all `accept` needs. The ids (sha256 cache keys) are held as their 32 bytes,
not as 64-character strings: ~50 bytes less per request.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pipeline.batchjob.engine import BatchRequest

if TYPE_CHECKING:
    from pipeline.model.client import JsonRequest

# A request -> its stage, its chat-completions body and our estimate of its prompt tokens.
Describe = Callable[["JsonRequest"], tuple[str, dict[str, Any], int]]


def _packed(key: str) -> bytes | str:
    """A hex cache key as its bytes; any other id (a results file may hold anything) as it is."""
    try:
        raw = bytes.fromhex(key)
    except ValueError:
        return key
    return raw if raw.hex() == key else key  # only the exact lowercase spelling maps back


def _unpacked(key: bytes | str) -> str:
    return key.hex() if isinstance(key, bytes) else key


class RequestSpool(dict[str, "JsonRequest"]):
    """What a deferred ModelClient records its cache misses in (`client.deferred`), kept on disk.

    ModelClient records a miss with `deferred.setdefault(key, request)`; here that writes the
    request's Batch line to the spool and keeps the request only for the ids in `keep` (the
    live fallback needs their messages). The dict itself stays empty.
    """

    def __init__(self, folder: Path, describe: Describe, keep: Collection[str] = ()) -> None:
        super().__init__()
        self.describe = describe
        self.keep = frozenset(keep)
        self.kept: dict[str, JsonRequest] = {}
        self._handle: IO[bytes] = tempfile.TemporaryFile(dir=folder, prefix=".spool-")  # noqa: SIM115
        self._shape_of: dict[bytes | str, int] = {}
        self._shapes = _Shapes()

    def setdefault(self, key: str, default: JsonRequest, /) -> JsonRequest:  # type: ignore[override]
        if _packed(key) not in self._shape_of:
            self._spool(key, default)
        return default

    def __setitem__(self, key: str, value: JsonRequest) -> None:
        self.setdefault(key, value)

    def _spool(self, key: str, request: JsonRequest) -> None:
        stage, body, estimate = self.describe(request)
        line = {"custom_id": key, "stage": stage, "est": estimate, "body": body}
        self._handle.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        self._shape_of[_packed(key)] = self._shapes.index(stage, request)
        if key in self.keep:
            self.kept[key] = request

    def close(self) -> PendingRequests:
        """Stop recording; the requests found, read back from the spool on demand."""
        self._handle.flush()
        return PendingRequests(self._handle, self._shape_of, self._shapes)


class _Shapes:
    """The few distinct shapes of a run's requests: a stage and the request without its messages."""

    def __init__(self) -> None:
        self.stages: list[str] = []
        self.requests: list[JsonRequest] = []
        self._index: dict[tuple[Any, ...], int] = {}

    def index(self, stage: str, request: JsonRequest) -> int:
        """The index of this request's shape (the check and schema by identity)."""
        signature = (
            stage,
            request.prompt_id,
            request.prompt_hash,
            request.schema_name,
            id(request.schema),
            request.max_tokens,
            request.temperature,
            id(request.check),
            request.salvageable,
        )
        found = self._index.get(signature)
        if found is None:
            found = self._index[signature] = len(self.requests)
            self.stages.append(stage)
            self.requests.append(replace(request, messages=[]))  # holds schema and check: their ids stay valid
        return found


class PendingRequests:
    """The requests of one deferred run: ids in memory, bodies streamed from the spool.

    Iterable more than once (and from two loops at a time: each keeps its own position).
    `without` gives a view that leaves some stages or requests out (nothing is copied).
    """

    def __init__(
        self,
        handle: IO[bytes],
        shape_of: dict[bytes | str, int],
        shapes: _Shapes,
        hidden: frozenset[str] = frozenset(),
        answered: frozenset[str] = frozenset(),
    ) -> None:
        self._handle = handle
        self._shape_of = shape_of
        self._shapes = shapes
        self._hidden = hidden
        self._answered = answered
        self._view = _StageView(shape_of, shapes.stages, hidden, answered)

    def stages(self) -> Mapping[str, str]:
        """custom_id → stage of the requests in view."""
        return self._view

    def __len__(self) -> int:
        return len(self._view)

    def __iter__(self) -> Iterator[BatchRequest]:
        position = 0
        while True:
            self._handle.seek(position)
            raw = self._handle.readline()
            if not raw:
                return
            position = self._handle.tell()
            line = json.loads(raw)
            if line["custom_id"] in self._view:
                yield BatchRequest(line["custom_id"], line["stage"], line["body"], line["est"])

    def without(self, stages: Collection[str] = (), answered: Collection[str] = ()) -> PendingRequests:
        """A view of the same spool without these stages and without these requests."""
        hidden, done = self._hidden | frozenset(stages), self._answered | frozenset(answered)
        return PendingRequests(self._handle, self._shape_of, self._shapes, hidden, done)

    def request(self, custom_id: str) -> JsonRequest | None:
        """The request behind an id without its messages: what validating and caching a reply needs."""
        index = self._shape_of.get(_packed(custom_id))
        return self._shapes.requests[index] if index is not None else None

    def close(self) -> None:
        self._handle.close()


class _StageView(Mapping[str, str]):
    """custom_id → stage over the spool's one dict, less hidden stages and answered ids."""

    def __init__(
        self,
        shape_of: dict[bytes | str, int],
        stages: list[str],
        hidden: frozenset[str],
        answered: frozenset[str],
    ) -> None:
        self._shape_of, self._stages, self._hidden, self._answered = shape_of, stages, hidden, answered
        self._count: int | None = None

    def __getitem__(self, key: str) -> str:
        stage = self._stages[self._shape_of[_packed(key)]]
        if stage in self._hidden or key in self._answered:
            raise KeyError(key)
        return stage

    def __iter__(self) -> Iterator[str]:
        keys = map(_unpacked, self._shape_of)
        if not (self._hidden or self._answered):
            return keys
        return (key for key in keys if key in self)

    def __contains__(self, key: object) -> bool:
        index = self._shape_of.get(_packed(key)) if isinstance(key, str) else None
        if index is None:
            return False
        return self._stages[index] not in self._hidden and key not in self._answered

    def __len__(self) -> int:
        if not (self._hidden or self._answered):
            return len(self._shape_of)
        if self._count is None:  # the spool is closed: its ids no longer change
            self._count = sum(1 for _ in self)
        return self._count
