"""The quantity record shared by the source and English extractors: value, unit, range, rendering."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from pipeline.checks.prose import CJK_CHAR

Unit = Literal["count", "ordinal", "multiple", "percent", "money", "year", "month", "day"]

MONTH_NAMES = "January February March April May June July August September October November December".split()
# "$" alone says dollars without saying whose; "¥" is yen or yuan.
_DOLLARS = frozenset({"USD", "HKD", "TWD", "SGD", "AUD", "CAD", "NZD"})
_CURRENCY_FAMILY = {"$": _DOLLARS, "¥": frozenset({"JPY", "CNY"})}
_CURRENCY_PREFIX = {"USD": "US$", "HKD": "HK$", "TWD": "NT$", "SGD": "S$", "AUD": "A$", "EUR": "€", "GBP": "£"}
_CURRENCY_SUFFIX = {"CNY": "yuan", "JPY": "yen", "KRW": "won", "¥": "yuan/yen", "$": "dollars"}
_SCALES = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"))
# Relative slack on every comparison: a sloppy 19.98 billion → "20 billion" is not worth a flag.
_SLACK = 0.005


@dataclass(frozen=True)
class Quantity:
    """One figure: `lo`..`hi` is the range the text commits to (its rounding or its hedge)."""

    value: float
    unit: Unit
    lo: float
    hi: float
    text: str  # as written
    start: int
    end: int
    currency: str | None = None  # ISO code, or "$"/"¥" when the text does not say which

    @classmethod
    def exact(cls, value: float, unit: Unit, text: str, start: int, end: int, currency: str | None = None) -> Quantity:
        value = abs(value)
        return cls(value, unit, value, value, text, start, end, currency)


def currencies_agree(a: str | None, b: str | None) -> bool:
    if a is None or b is None or a == b:
        return True
    return a in _CURRENCY_FAMILY.get(b, ()) or b in _CURRENCY_FAMILY.get(a, ())


_NUMERIC = frozenset({"count", "ordinal", "multiple"})


def units_agree(english: Quantity, source: Quantity) -> bool:
    """Can this English figure be a rendering of this source figure?"""
    e, s = english.unit, source.unit
    if e == "money" and s == "money":
        return currencies_agree(english.currency, source.currency)
    if e == s:
        return True
    if e in _NUMERIC:
        # A bare number may restate a sum of money or a part of a date.
        return s in _NUMERIC or s in ("money", "year", "month", "day")
    if e == "money":
        return s == "count"
    if e == "year":
        return s == "count"
    return False


def ranges_meet(english: Quantity, source: Quantity) -> bool:
    lo, hi = english.lo, english.hi
    if english.unit not in ("year", "month", "day"):
        lo, hi = lo * (1 - _SLACK), hi * (1 + _SLACK)
    return lo <= source.hi + 1e-9 and source.lo <= hi + 1e-9


def supports(english: Quantity, source: Quantity) -> bool:
    if not units_agree(english, source):
        return False
    if ranges_meet(english, source):
        return True
    # 增長了2倍 is read as "doubled" and as "tripled": accept either.
    if source.unit == "multiple" and english.unit in _NUMERIC:
        shifted = Quantity(source.value + 1, "multiple", source.lo + 1, source.hi + 1, "", 0, 0)
        return ranges_meet(english, shifted)
    return False


def format_number(value: float) -> str:
    """20000000000 -> "20 billion", 38530000 -> "38.53 million", 3853 -> "3,853", 2.5 -> "2.5"."""
    for scale, word in _SCALES:
        if value >= scale:
            return f"{_trim(value / scale)} {word}"
    if value >= 1000 and value == int(value):
        return f"{int(value):,}"
    return _trim(value)


def _trim(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def render(quantity: Quantity) -> str:
    """The figure in plain English, for suggestions: "HK$20 billion", "30%", "July", "the 3rd"."""
    value = quantity.value
    if quantity.unit == "percent":
        return f"{_trim(value)}%"
    if quantity.unit == "year":
        return str(int(value))
    if quantity.unit == "month" and 1 <= value <= 12:
        return MONTH_NAMES[int(value) - 1]
    if quantity.unit in ("day", "ordinal"):
        return f"the {ordinal(int(value))}" if value == int(value) else _trim(value)
    if quantity.unit == "multiple":
        return f"{_trim(value)} times"
    number = format_number(value)
    if quantity.unit == "money" and quantity.currency:
        if quantity.currency in _CURRENCY_PREFIX:
            return _CURRENCY_PREFIX[quantity.currency] + number
        return f"{number} {_CURRENCY_SUFFIX.get(quantity.currency, quantity.currency)}"
    return number


def ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def describe(quantity: Quantity) -> str:
    """A source figure for the reader: "200億港元 = HK$20 billion", or just "2025"."""
    plain = render(quantity)
    written = quantity.text.strip()
    if quantity.unit in ("year", "month", "day") and re.search(r"[A-Za-z]|[0-9][-/.][0-9]", written):
        return written  # a whole date as written: "July 3, 2025", "2025-07-03"
    if not CJK_CHAR.search(written):
        # English as written reads best, unless it is a bare number whose unit came from context ("4-7%").
        return plain if re.fullmatch(r"[0-9.,]+", written) else written
    if written.replace(",", "") == plain.replace(",", "") or not written:
        return plain
    return f"{written} = {plain}"


def closeness(english: Quantity, source: Quantity) -> tuple[int, int, float]:
    """Sort key for suggestions: same kind first, then the same leading digits (a slipped 萬/億), then size."""
    kind = 0 if units_agree(english, source) else 1
    if english.value <= 0 or source.value <= 0:
        return kind, 1, math.inf
    ratio = math.log10(english.value / source.value)
    same_digits = 0 if abs(ratio - round(ratio)) < 1e-6 else 1
    return kind, same_digits, abs(ratio)
