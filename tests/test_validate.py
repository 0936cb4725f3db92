"""Reply validation: the fast schema check agrees with jsonschema, and every complaint is still jsonschema's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pipeline.model.prompts import load_prompt
from pipeline.model.validate import _compile, check_data, check_reply, schema_errors

PROMPTS = sorted({path.name.split(".")[0] for path in (Path(__file__).parent.parent / "prompts").glob("*.v*.md")})
SCHEMAS = [load_prompt(name).schema for name in PROMPTS]
KINDS = ["person", "organisation", "product", "place", "term"]

# Values near what a model sends: right and wrong types, empty and non-empty strings, the enum's words.
scalars = st.one_of(
    st.sampled_from(["", "x", "Alibaba", *KINDS, "Person"]),
    st.text(max_size=3),
    st.integers(-2, 2),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
glossary_item = st.dictionaries(st.sampled_from(["source", "target", "kind", "extra"]), scalars, max_size=4)
values = st.recursive(
    scalars | glossary_item,
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12,
)
replies = st.dictionaries(
    st.sampled_from(["title", "summary", "key_points", "glossary", "overview", "groups", "other"]),
    st.one_of(values, st.lists(scalars, min_size=0, max_size=8), st.lists(glossary_item, max_size=4)),
    max_size=6,
)


def example(schema: dict[str, Any], n: int) -> Any:
    """A valid instance of one of our schemas, varied by n."""
    if "enum" in schema:
        return schema["enum"][n % len(schema["enum"])]
    kind = schema.get("type")
    if kind == "object":
        return {name: example(sub, n + i) for i, (name, sub) in enumerate(schema.get("properties", {}).items())}
    if kind == "array":
        size = max(schema.get("minItems", 0), min(n % 4, schema.get("maxItems", 9)))
        return [example(schema.get("items", {}), n + i) for i in range(size)]
    return ["T", "第一", "A summary."][n % 3]


def places(node: Any) -> list[tuple[Any, Any]]:
    """(container, key or index) of every value inside `node`."""
    found: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        found += [(node, key) for key in node]
        for value in node.values():
            found += places(value)
    elif isinstance(node, list):
        found += [(node, i) for i in range(len(node))]
        for value in node:
            found += places(value)
    return found


@st.composite
def mutated(draw: st.DrawFn, schema: dict[str, Any]) -> Any:
    """A valid instance with up to two things broken (or none): a key gone or added, a value or list changed."""
    data = example(schema, draw(st.integers(0, 5)))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        spots = places(data)
        if not spots:
            break
        parent, key = draw(st.sampled_from(spots))
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            parent[key] = draw(scalars | st.lists(scalars, max_size=2))
        elif action == "drop":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "kind", "title"]))] = draw(scalars)
        else:
            parent.append(draw(scalars))
    return data


def jsonschema_valid(data: Any, schema: dict[str, Any]) -> bool:
    return not list(Draft202012Validator(schema).iter_errors(data))


@pytest.mark.parametrize("schema", SCHEMAS, ids=PROMPTS)
def test_every_prompt_schema_gets_a_fast_check(schema: dict[str, Any]) -> None:
    assert _compile(schema) is not None


@settings(max_examples=200, deadline=None)
@given(which=st.integers(0, len(SCHEMAS) - 1), data=st.data())
def test_the_fast_check_says_valid_exactly_when_jsonschema_does(which: int, data: st.DataObject) -> None:
    schema = SCHEMAS[which]
    data = data.draw(st.one_of(mutated(schema), mutated(schema), replies, values))
    check = _compile(schema)
    assert check is not None
    assert check(data) == jsonschema_valid(data, schema)


def test_a_valid_reply_passes_and_an_invalid_one_gets_jsonschema_s_message() -> None:
    schema = load_prompt("map").schema
    good = {"title": "T", "summary": "S", "key_points": ["a", "b", "c"], "glossary": []}
    assert check_data(good, schema).data == good
    bad = {**good, "key_points": ["a", "b"]}
    verdict = check_data(bad, schema)
    assert verdict.data is None
    assert verdict.problem == "the reply does not match the schema at key_points: ['a', 'b'] is too short"


def test_invalid_glossary_items_are_still_salvaged() -> None:
    schema = load_prompt("map").schema
    reply = (
        '{"title": "T", "summary": "S", "key_points": ["a", "b", "c"], "glossary": ['
        '{"source": "阿里", "target": "Ali", "kind": "person"}, {"source": "x", "target": "y", "kind": "thing"}]}'
    )
    verdict = check_reply(reply, schema, salvageable=("glossary",))
    assert verdict.data is not None and verdict.salvaged == 1
    assert verdict.data["glossary"] == [{"source": "阿里", "target": "Ali", "kind": "person"}]


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}},  # a keyword it does not know
        {"type": "object", "patternProperties": {"^x": {"type": "string"}}, "additionalProperties": False},
        {"enum": [1, True]},  # jsonschema's own equality
        {"type": "array", "items": True},
    ],
)
def test_other_schemas_are_left_to_jsonschema(schema: dict[str, Any]) -> None:
    assert _compile(schema) is None
    for data in ({"n": 2}, {"xa": 1}, True, 1, [1]):
        assert (schema_errors(data, schema) == []) == jsonschema_valid(data, schema)
