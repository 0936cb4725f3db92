"""Model replies are untrusted text: parse the JSON, check it against the schema, salvage what is valid."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Check = Callable[[dict[str, Any]], str | None]
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
# Replies past this size are not summaries: they are loops or garbage (and would be written verbatim).
MAX_REPLY_CHARS = 200_000


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one reply: the usable data, or what is wrong with it."""

    data: dict[str, Any] | None
    problem: str | None = None
    salvaged: int = 0  # invalid array items dropped so the rest could be kept


def extract_json(content: str) -> Any:
    """Parse a reply; tolerate a Markdown code fence or prose around one JSON object."""
    text = content.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            return json.loads(text[start : end + 1])
        raise


@functools.cache
def _validator(schema_text: str) -> Any:
    """One compiled validator per schema: building it costs more than validating a reply."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_text))


def schema_errors(data: Any, schema: dict[str, Any]) -> list[Any]:
    validator = _validator(json.dumps(schema, sort_keys=True))
    return sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.path])


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.path) or "the top level"
    return f"the reply does not match the schema at {where}: {error.message}"


def check_data(
    data: Any, schema: dict[str, Any], check: Check | None = None, salvageable: Sequence[str] = ()
) -> Verdict:
    """Validate parsed data; invalid items of `salvageable` arrays are dropped rather than failing the reply."""
    errors = schema_errors(data, schema)
    salvaged = 0
    if errors and isinstance(data, dict):
        drop: dict[str, set[int]] = {}
        for error in errors:
            path = list(error.path)
            if len(path) >= 2 and path[0] in salvageable and isinstance(path[1], int):
                drop.setdefault(str(path[0]), set()).add(path[1])
            else:
                return Verdict(None, _describe(error))
        data = dict(data)
        for name, indices in drop.items():
            data[name] = [item for i, item in enumerate(data[name]) if i not in indices]
            salvaged += len(indices)
        errors = schema_errors(data, schema)
        if errors:
            return Verdict(None, _describe(errors[0]))
    elif errors:
        return Verdict(None, _describe(errors[0]))
    problem = check(data) if check else None
    return Verdict(None, problem) if problem else Verdict(data, None, salvaged)


def check_reply(
    content: str, schema: dict[str, Any], check: Check | None = None, salvageable: Sequence[str] = ()
) -> Verdict:
    """(data, None) for a good reply, else (None, what is wrong with it, in one line)."""
    if not content.strip():
        return Verdict(None, "the reply was empty")
    if len(content) > MAX_REPLY_CHARS:
        return Verdict(None, f"the reply is {len(content):,} characters long, far more than asked for")
    try:
        data = extract_json(content)
    except json.JSONDecodeError as exc:
        return Verdict(None, f"the reply is not valid JSON ({exc.msg} at character {exc.pos})")
    except RecursionError:
        return Verdict(None, "the reply is nested too deeply to be the JSON asked for")
    return check_data(data, schema, check, salvageable)
