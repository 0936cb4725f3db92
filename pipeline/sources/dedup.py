"""One story once: web inputs whose cleaned text was already summarised are skipped, and remembered after."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.errors import DuplicateInput
from pipeline.records import ArticleResult, Document, RawInput
from pipeline.responsive import off_loop_if
from pipeline.sources.seen import DuplicateGate, SeenStore, text_hash

Ingest = Callable[[RawInput, str], list[Document]]
INLINE_INGEST_BYTES = 2048  # inputs this small (a short wire item) are cleaned on the loop: ~2.5 ms at most


@dataclass
class Dedup:
    """Wraps the ingest stage with the duplicate gate, and (as a sink) marks what was summarised."""

    ingest_stage: Ingest
    store: SeenStore | None
    new_only: bool
    gate: DuplicateGate = field(init=False)
    _pending: dict[str, tuple[str | None, str, str]] = field(default_factory=dict)  # id -> (url, hash, source)

    def __post_init__(self) -> None:
        self.gate = DuplicateGate(self.store, self.new_only)

    async def ingest(self, raw: RawInput, doc_id: str) -> list[Document]:
        # CPU work, ~1.2 ms per kB: off the event loop unless the input is small.
        heavy = raw.payload is not None and len(raw.payload) > INLINE_INGEST_BYTES  # none: an error at once
        documents = await off_loop_if(heavy, self.ingest_stage, raw, doc_id)
        if raw.meta.url is None:  # files are the user's own choice: never skipped as duplicates
            return documents
        kept: list[Document] = []
        earlier: str | None = None
        for doc in documents:
            digest = text_hash(doc.text)
            earlier = self.gate.admit(raw.source, digest)
            if earlier is None:
                kept.append(doc)
                self._pending[doc.id] = (raw.meta.canonical_url or raw.meta.url, digest, raw.source)
        if not kept:
            raise DuplicateInput(raw.source, f"same story as {earlier}; summarised once")
        return kept

    # -- as a sink: mark stories once their summaries are written ----------------------------------

    def article(self, result: ArticleResult) -> None:
        pending = self._pending.pop(result.id, None)
        if pending is not None and self.store is not None:
            url, digest, source = pending
            self.store.mark(url, digest, source)

    def finish(self, outcome: object) -> None:
        pass
