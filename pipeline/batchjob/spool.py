"""The pipeline's pending requests, spooled to a temporary file as a deferred run finds them.

A deferred run over N articles asks for about N requests, each carrying its article's text.
Held as a list that is a few KB per article; here each request is written out as it is found
and only its id, stage and "shape" (the request without its messages: schema, check, budget,
shared by every request of one prompt) stay in memory, which is all `accept` needs.
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
        self._stages: dict[str, str] = {}
        self._shape_of: dict[str, int] = {}
        self._shapes: list[JsonRequest] = []
        self._shape_index: dict[tuple[Any, ...], int] = {}
        self._interned: dict[str, str] = {}

    def setdefault(self, key: str, default: JsonRequest, /) -> JsonRequest:  # type: ignore[override]
        if key not in self._stages:
            self._spool(key, default)
        return default

    def __setitem__(self, key: str, value: JsonRequest) -> None:
        self.setdefault(key, value)

    def _spool(self, key: str, request: JsonRequest) -> None:
        stage, body, estimate = self.describe(request)
        line = {"custom_id": key, "stage": stage, "est": estimate, "body": body}
        self._handle.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        self._stages[key] = self._interned.setdefault(stage, stage)
        self._shape_of[key] = self._shape(request)
        if key in self.keep:
            self.kept[key] = request

    def _shape(self, request: JsonRequest) -> int:
        """The index of this request's shape: its fields but the messages (the check by identity)."""
        signature = (
            request.prompt_id,
            request.prompt_hash,
            request.schema_name,
            id(request.schema),
            request.max_tokens,
            request.temperature,
            id(request.check),
            request.salvageable,
        )
        index = self._shape_index.get(signature)
        if index is None:
            index = self._shape_index[signature] = len(self._shapes)
            self._shapes.append(replace(request, messages=[]))  # holds schema and check: their ids stay valid
        return index

    def close(self) -> PendingRequests:
        """Stop recording; the requests found, read back from the spool on demand."""
        self._handle.flush()
        return PendingRequests(self._handle, self._stages, self._shape_of, self._shapes)


class PendingRequests:
    """The requests of one deferred run: ids and stages in memory, bodies streamed from the spool.

    Iterable more than once (and from two loops at a time: each keeps its own position).
    `without` gives a view that leaves some stages or requests out.
    """

    def __init__(
        self,
        handle: IO[bytes],
        stages: dict[str, str],
        shape_of: dict[str, int],
        shapes: list[JsonRequest],
        hidden: frozenset[str] = frozenset(),
        answered: frozenset[str] = frozenset(),
    ) -> None:
        self._handle = handle
        self._all = stages
        self._shape_of = shape_of
        self._shapes = shapes
        self._hidden = hidden
        self._answered = answered
        if hidden or answered:
            self._view = {k: s for k, s in stages.items() if s not in hidden and k not in answered}
        else:
            self._view = stages

    def stages(self) -> Mapping[str, str]:
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
        return PendingRequests(self._handle, self._all, self._shape_of, self._shapes, hidden, done)

    def request(self, custom_id: str) -> JsonRequest | None:
        """The request behind an id without its messages: what validating and caching a reply needs."""
        index = self._shape_of.get(custom_id)
        return self._shapes[index] if index is not None else None

    def close(self) -> None:
        self._handle.close()
