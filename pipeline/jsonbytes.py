"""JSON text exactly as json.dumps writes it, made by orjson wherever the two give the same bytes.

orjson is several times faster (~25x on an article record), and for plain data — str keys, strings,
bools, None, integers within 64 bits, floats that json writes without an exponent — its compact and
indented forms are json.dumps's byte for byte (tests/test_fast_paths.py holds it to that). Anything
else (a float like 1e-07, NaN, a huge integer, a lone surrogate, another type) goes to json, which
says what it always said. orjson is optional: without it everything goes to json.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

_orjson: ModuleType | None
try:
    import orjson as _orjson
except ImportError:
    _orjson = None

_MAX_DEPTH = 64  # orjson refuses nesting past 254; json goes as deep as the recursion limit


def canonical(data: Any) -> bytes:
    """UTF-8 of json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))."""
    if _orjson is not None and _plain(data, 0):
        try:
            return bytes(_orjson.dumps(data, option=_orjson.OPT_SORT_KEYS))
        except TypeError:  # orjson.JSONEncodeError (a lone surrogate, say): json says what is wrong
            pass
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def compact(data: Any) -> bytes:
    """UTF-8 of json.dumps(data, ensure_ascii=False, separators=(",", ":")): keys in their own order."""
    if _orjson is not None and _plain(data, 0):
        try:
            return bytes(_orjson.dumps(data))
        except TypeError:
            pass
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def indented(data: Any) -> str:
    """json.dumps(data, ensure_ascii=False, indent=2)."""
    if _orjson is not None and _plain(data, 0):
        try:
            return str(_orjson.dumps(data, option=_orjson.OPT_INDENT_2).decode("utf-8"))
        except TypeError:
            pass
    return json.dumps(data, ensure_ascii=False, indent=2)


def _plain(data: Any, depth: int) -> bool:
    kind = type(data)
    if kind is str or kind is bool or data is None:
        return True
    if kind is int:
        return -(2**63) <= data < 2**63
    if kind is float:
        return data == 0 or 1e-4 <= abs(data) < 1e16  # json writes these without an exponent, as orjson does
    if depth > _MAX_DEPTH:
        return False
    if kind is dict:  # loops, strings tested in place: this walk must cost far less than json itself
        for key, value in data.items():
            if type(key) is not str or (type(value) is not str and not _plain(value, depth + 1)):
                return False
        return True
    if kind is list or kind is tuple:
        for item in data:
            if type(item) is not str and not _plain(item, depth + 1):
                return False
        return True
    return False
