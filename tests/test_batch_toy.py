"""A toy stage engine for the Batch job tests (map → reduce → briefing, on-disk cache), and tests that it is faithful.

Like the real pipeline, each stage's prompts hold the previous stage's answers, so a stage can
only be prepared once the one before it is cached; `accept` checks each reply answers its own
request, and counts accepts per custom_id so tests can prove nothing was accepted twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.batchjob.engine import BatchRequest, LiveOutcome, LiveReply
from tests.fakebatch import completion, toy_responder


def cache_key(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class ToyEngine:
    """map per chunk → reduce per multi-chunk article → one briefing; each stage's prompts hold earlier answers."""

    def __init__(self, root: Path, chunks: Sequence[int], *, calls: Counter[str] | None = None) -> None:
        self.cache, self.out = root / "cache", root / "out"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.chunks = list(chunks)
        self.calls: Counter[str] = calls if calls is not None else Counter()  # accept() per custom_id
        self.live_fails: set[str] = set()  # user texts the live fallback cannot answer
        self.live_sent: list[str] = []
        self.known: dict[str, BatchRequest] = {}

    def answer(self, custom_id: str) -> str | None:
        path = self.cache / f"{custom_id}.json"
        return json.loads(path.read_text())["answer"] if path.exists() else None

    def request(self, stage: str, text: str) -> BatchRequest:
        body = {"model": "toy-1", "messages": [{"role": "system", "content": stage}, {"role": "user", "content": text}]}
        body["max_tokens"] = 64
        request = BatchRequest(cache_key(body), stage, body, est_prompt_tokens=len(text) // 4 + 5)
        self.known[request.custom_id] = request
        return request

    def _graph(self) -> tuple[list[BatchRequest], BatchRequest | None]:
        needed: list[BatchRequest] = []
        finals: list[str] = []
        for article, count in enumerate(self.chunks):
            maps = [self.request("map", f"a{article}c{chunk}") for chunk in range(count)]
            answers = [self.answer(m.custom_id) for m in maps]
            needed += [m for m, a in zip(maps, answers, strict=True) if a is None]
            if None in answers:
                continue
            if count == 1:
                finals.append(str(answers[0]))
                continue
            reduce = self.request("reduce", f"a{article}:" + "+".join(str(a) for a in answers))
            done = self.answer(reduce.custom_id)
            if done is None:
                needed.append(reduce)
            else:
                finals.append(done)
        if len(finals) < len(self.chunks):
            return needed, None
        return needed, self.request("briefing", " | ".join(finals))

    async def pending(self) -> list[BatchRequest]:
        needed, briefing = self._graph()
        if briefing is not None and self.answer(briefing.custom_id) is None:
            needed.append(briefing)
        return needed

    def accept(self, custom_id: str, body: dict[str, Any]) -> str | None:
        request = self.known.get(custom_id)
        if request is None:
            return "unknown request"
        try:
            reply = json.loads(body["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError, ValueError):
            return "reply is not a chat completion with JSON content"
        if not isinstance(reply, dict) or reply.get("echo") != request.body["messages"][-1]["content"]:
            return "reply does not answer this request"
        self.calls[custom_id] += 1
        temp = self.cache / f".{custom_id}.tmp"
        temp.write_text(json.dumps({"answer": reply.get("answer")}))
        os.replace(temp, self.cache / f"{custom_id}.json")
        return None

    async def send_live(self, requests: Sequence[BatchRequest]) -> dict[str, LiveOutcome]:
        result: dict[str, LiveOutcome] = {}
        for request in requests:
            self.live_sent.append(request.custom_id)
            text = request.body["messages"][-1]["content"]
            if text in self.live_fails:
                result[request.custom_id] = "live endpoint refused it"
                continue
            problem = self.accept(request.custom_id, completion(request.body, toy_responder(request.body)))
            result[request.custom_id] = problem or LiveReply(prompt_tokens=7, completion_tokens=3)
        return result

    async def finish(self) -> int:
        _, briefing = self._graph()
        text = self.answer(briefing.custom_id) if briefing is not None else None
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "briefing.json").write_text(json.dumps({"briefing": text}))
        return 0 if text is not None else 1


def test_the_toy_engine_is_staged_and_checks_replies(tmp_path: Path) -> None:
    engine = ToyEngine(tmp_path, [1, 2])
    first = asyncio.run(engine.pending())
    assert [(r.stage, r.body["messages"][-1]["content"]) for r in first] == [
        ("map", "a0c0"),
        ("map", "a1c0"),
        ("map", "a1c1"),
    ]
    assert engine.accept(first[0].custom_id, completion(first[1].body, toy_responder(first[1].body))) is not None
    assert engine.accept(first[0].custom_id, {"choices": []}) is not None
    for request in first:
        assert engine.accept(request.custom_id, completion(request.body, toy_responder(request.body))) is None
    [reduce] = asyncio.run(engine.pending())
    assert reduce.stage == "reduce" and reduce.body["messages"][-1]["content"] == "a1:ans(a1c0)+ans(a1c1)"
    assert asyncio.run(engine.finish()) == 1  # no briefing yet
