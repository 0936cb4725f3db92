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
    """Every schema error in `data`, by path; jsonschema is asked only when the fast check fails."""
    if _fast_check(schema)(data):
        return []
    validator = _validator(json.dumps(schema, sort_keys=True))
    return sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.path])


# -- a fast check of the keywords brief's schemas use ------------------------------------------------
# Most replies are valid, and jsonschema takes ~0.4 ms to say so (plus ~70 ms to import). The check
# below answers "valid?" for the few keywords of our prompts' schemas; it is only ever trusted when it
# says yes (jsonschema then finds no error either: tests/test_validate.py holds it to that), so every
# message about an invalid reply still comes from jsonschema. A schema with any other keyword is
# always handed to jsonschema.

Predicate = Callable[[Any], bool]
_ANNOTATIONS = frozenset({"title", "description", "$comment", "$schema", "examples", "default"})
_TYPES: dict[str, Predicate] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}
_COMPILED: dict[int, tuple[dict[str, Any], Predicate]] = {}  # by id(schema), the schema kept alive


def _never(_: Any) -> bool:
    return False


def _fast_check(schema: dict[str, Any]) -> Predicate:
    """The compiled check of `schema` (schemas are not changed once made: the prompts' are constants)."""
    found = _COMPILED.get(id(schema))
    if found is not None and found[0] is schema:
        return found[1]
    if len(_COMPILED) >= 64:  # callers that build a schema per call: stay bounded
        _COMPILED.clear()
    try:
        predicate = _compile(schema)
    except (TypeError, ValueError, KeyError, AttributeError):
        predicate = None
    _COMPILED[id(schema)] = (schema, predicate or _never)
    return predicate or _never


def _compile(schema: Any) -> Predicate | None:
    """A predicate that is true only where jsonschema finds no error; None for keywords it does not know."""
    if not isinstance(schema, dict):
        return None
    checks: list[Predicate] = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        check = _keyword(keyword, value, schema)
        if check is None:
            return None
        checks.append(check)
    if len(checks) == 1:
        return checks[0]
    return lambda instance: all(check(instance) for check in checks)


def _keyword(keyword: str, value: Any, schema: dict[str, Any]) -> Predicate | None:
    if keyword == "type":
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or any(name not in _TYPES for name in names):
            return None
        tests = [_TYPES[name] for name in names]
        return tests[0] if len(tests) == 1 else (lambda v: any(test(v) for test in tests))
    if keyword == "enum":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return None  # jsonschema's equality of 1, 1.0 and True is not worth copying
        allowed = frozenset(value)
        return lambda v: isinstance(v, str) and v in allowed
    if keyword in ("minLength", "maxLength", "minItems", "maxItems"):
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        kind = str if keyword.endswith("Length") else list
        if keyword.startswith("min"):
            return lambda v: not isinstance(v, kind) or len(v) >= value  # type: ignore[arg-type]
        return lambda v: not isinstance(v, kind) or len(v) <= value  # type: ignore[arg-type]
    if keyword == "required":
        if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
            return None
        names = tuple(value)
        return lambda v: not isinstance(v, dict) or all(name in v for name in names)
    if keyword == "properties":
        if not isinstance(value, dict):
            return None
        properties: dict[str, Predicate] = {}
        for name, sub in value.items():
            compiled = _compile(sub)
            if compiled is None:
                return None
            properties[name] = compiled
        return lambda v: (
            not isinstance(v, dict) or all(properties[name](item) for name, item in v.items() if name in properties)
        )
    if keyword == "additionalProperties":
        if value is True:
            return lambda v: True
        if value is not False or "patternProperties" in schema:
            return None
        known = frozenset(schema.get("properties", {}))
        return lambda v: not isinstance(v, dict) or known.issuperset(v)
    if keyword == "items":
        if "prefixItems" in schema:
            return None
        item_check = _compile(value)
        if item_check is None:
            return None
        return lambda v: not isinstance(v, list) or all(item_check(item) for item in v)
    return None


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
