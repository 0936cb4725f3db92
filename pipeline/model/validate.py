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
_KNOWN = frozenset(
    {"type", "enum", "minLength", "maxLength", "minItems", "maxItems", "required", "properties"}
    | {"additionalProperties", "items"}
)
_CLASSES: dict[str, type] = {"string": str, "object": dict, "array": list}
_TYPES: dict[str, Predicate] = {
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


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _compile(schema: Any) -> Predicate | None:
    """A predicate that is true only where jsonschema finds no error; None for keywords it does not know.

    One closure per schema node, each keyword a plain test in it: a reply is checked in tens of µs.
    """
    if not isinstance(schema, dict) or not set(schema) <= _KNOWN | _ANNOTATIONS or "patternProperties" in schema:
        return None
    names = schema.get("type")
    names = [names] if isinstance(names, str) else names
    if names is not None and (not isinstance(names, list) or not names or any(
        n not in _CLASSES and n not in _TYPES for n in names
    )):  # fmt: skip
        return None
    classes = tuple(_CLASSES[n] for n in names if n in _CLASSES) if names else ()
    others = [_TYPES[n] for n in names if n in _TYPES] if names else []
    enum = schema.get("enum")
    if enum is not None and not (isinstance(enum, list) and all(isinstance(item, str) for item in enum)):
        return None  # jsonschema's equality of 1, 1.0 and True is not worth copying
    allowed = frozenset(enum) if enum is not None else None
    bounds = {key: _count(schema[key]) for key in ("minLength", "maxLength", "minItems", "maxItems") if key in schema}
    if any(bound is None for bound in bounds.values()):
        return None
    min_length, max_length = bounds.get("minLength"), bounds.get("maxLength")
    min_items, max_items = bounds.get("minItems"), bounds.get("maxItems")
    required = schema.get("required")
    if required is not None and not (isinstance(required, list) and all(isinstance(n, str) for n in required)):
        return None
    properties: dict[str, Predicate] = {}
    for name, sub in (schema.get("properties") or {}).items():
        compiled = _compile(sub)
        if compiled is None:
            return None
        properties[name] = compiled
    if "properties" in schema and not isinstance(schema["properties"], dict):
        return None
    extra = schema.get("additionalProperties", True)
    if extra is not True and extra is not False:
        return None
    known = frozenset(properties) if extra is False else None
    items = _compile(schema["items"]) if "items" in schema else None
    if "items" in schema and (items is None or "prefixItems" in schema):
        return None

    def check(value: Any) -> bool:
        if names is not None and not (isinstance(value, classes) or any(test(value) for test in others)):
            return False
        if allowed is not None and not (isinstance(value, str) and value in allowed):
            return False
        if isinstance(value, str):
            if min_length is not None and len(value) < min_length:
                return False
            return max_length is None or len(value) <= max_length
        if isinstance(value, list):
            if (min_items is not None and len(value) < min_items) or (max_items is not None and len(value) > max_items):
                return False
            if items is not None:
                for item in value:
                    if not items(item):
                        return False
            return True
        if isinstance(value, dict):
            if required is not None:
                for name in required:
                    if name not in value:
                        return False
            if known is not None and not known.issuperset(value):
                return False
            for name, item in value.items():
                test = properties.get(name)
                if test is not None and not test(item):
                    return False
        return True

    return check


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
