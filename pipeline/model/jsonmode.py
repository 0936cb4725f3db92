"""The JSON-mode ladder: how a request asks for structured output, strongest form first.

schema  response_format json_schema (vLLM, OpenAI, SGLang, recent llama.cpp): the server enforces it
object  response_format json_object (+ the schema, which llama.cpp honours), schema text in the prompt
prompt  no response_format; the schema text in the prompt and a tolerant parser
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.records import JSON_MODES

__all__ = ["FALLBACK", "JSON_MODES", "request_arguments", "schema_note"]

# The next mode down when a server refuses (or ignores) the current one.
FALLBACK = {"schema": "object", "object": "prompt"}


def schema_note(schema: dict[str, Any]) -> str:
    return (
        "\n\nReply with a single JSON object, no prose and no code fence, valid against this JSON Schema:\n"
        + json.dumps(schema, ensure_ascii=False)
    )


def request_arguments(
    messages: list[dict[str, str]], schema_name: str, schema: dict[str, Any], mode: str, describe_schema: bool
) -> dict[str, Any]:
    """`messages` and `response_format` for a mode; the schema goes into the system prompt when asked.

    The schema text is appended to the system message so that it stays the first message and
    byte-identical across requests of one prompt (servers cache that prefix).
    """
    arguments: dict[str, Any] = {}
    if mode == "schema":
        arguments["response_format"] = {"type": "json_schema", "json_schema": {"name": schema_name, "schema": schema}}
    elif mode == "object":
        arguments["response_format"] = {"type": "json_object", "schema": schema}
    if describe_schema or mode != "schema":
        messages = [dict(messages[0], content=messages[0]["content"] + schema_note(schema)), *messages[1:]]
    arguments["messages"] = messages
    return arguments
