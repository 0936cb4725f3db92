"""A backend made for tests: the scripted model answers in-process, no HTTP (httpx's MockTransport idea).

Logic above the transport (summarising, merging, the glossary, the JSON-mode ladder, salvage) is
tested through it; the HTTP backend itself is tested against the real loopback server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.model.backends import FormatRefused, Reply, Transient
from tests.fakeserver import default_responder

Responder = Callable[[dict[str, Any]], str]


class InProcessBackend:
    """Answers each body with `responder`; `script` injects faults for the first requests, in order."""

    base_url = "inprocess://test"

    def __init__(
        self,
        responder: Responder = default_responder,
        script: Sequence[str | None] = (),
        models: Sequence[str] = ("fake-qwen",),
        refuse_schema: bool = False,
    ) -> None:
        self.responder = responder
        self.script = list(script)
        self.models = list(models)
        self.refuse_schema = refuse_schema
        self.received: list[dict[str, Any]] = []

    def bodies(self) -> list[dict[str, Any]]:
        return list(self.received)

    async def send(self, body: dict[str, Any]) -> Reply:
        self.received.append(json.loads(json.dumps(body)))  # what a server would have seen
        fault = self.script.pop(0) if self.script else None
        if fault == "500":
            raise Transient("HTTP 500: scripted")
        if self.refuse_schema and body.get("response_format", {}).get("type") == "json_schema":
            raise FormatRefused("HTTP 500: Input should be 'text' or 'json_object'")
        content = self.responder(body)
        if fault == "length":
            return Reply(content[: len(content) // 2], "length", 10, body.get("max_tokens", 0))
        prompt = sum(len(m["content"]) for m in body["messages"]) // 2
        return Reply(content, "stop", prompt, max(1, len(content) // 4))

    async def list_models(self) -> list[str]:
        return list(self.models)

    async def aclose(self) -> None:
        pass
