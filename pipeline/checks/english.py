"""Figures in English text: numbers, money, percentages, dates, ordinals, counts in words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.checks.prose import CJK_CHAR
from pipeline.checks.quantity import Quantity, Unit

_ONES = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
_ONES += "seventeen eighteen nineteen"
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
WORD_VALUES = {word: i + 1 for i, word in enumerate(_ONES.split())}
WORD_VALUES.update({word: 20 + 10 * i for i, word in enumerate(_TENS.split())})
_NUMBER_WORDS = frozenset(WORD_VALUES)
_WORDS = rf"(?:(?:{'|'.join(_TENS.split())})(?:-(?:{'|'.join(_ONES.split()[:9])}))?|{'|'.join(_ONES.split())})"
_ORDINAL_WORDS = {
    word: i + 2
    for i, word in enumerate(
        "second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
        "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split()
    )
}
_SCALE_WORDS = {"hundred": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_SCALE_ABBR = {"k": 1e3, "m": 1e6, "mn": 1e6, "b": 1e9, "bn": 1e9, "tn": 1e12, "trn": 1e12}
_CURRENCY_PREFIX = {
    "HK$": "HKD", "US$": "USD", "NT$": "TWD", "S$": "SGD", "A$": "AUD", "C$": "CAD", "$": "$", "€": "EUR",
    "£": "GBP", "¥": "¥", "￥": "¥", "₩": "KRW", "RMB": "CNY", "CNY": "CNY", "USD": "USD", "HKD": "HKD",
    "TWD": "TWD", "JPY": "JPY", "EUR": "EUR", "GBP": "GBP", "KRW": "KRW",
}  # fmt: skip
_CURRENCY_SUFFIX = {
    "hong kong dollar": "HKD", "hk dollar": "HKD", "us dollar": "USD", "u.s. dollar": "USD",
    "american dollar": "USD", "new taiwan dollar": "TWD", "taiwan dollar": "TWD", "nt dollar": "TWD",
    "singapore dollar": "SGD", "australian dollar": "AUD", "canadian dollar": "CAD", "dollar": "$",
    "yuan": "CNY", "renminbi": "CNY", "rmb": "CNY", "yen": "JPY", "won": "KRW", "euro": "EUR", "pound": "GBP",
    "hkd": "HKD", "usd": "USD", "cny": "CNY", "jpy": "JPY", "eur": "EUR", "gbp": "GBP", "krw": "KRW", "twd": "TWD",
}  # fmt: skip
_MONTHS = {
    **{name: i + 1 for i, name in enumerate(
        "January February March April May June July August September October November December".split())},
    "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Sept": 9, "Oct": 10,
    "Nov": 11, "Dec": 12,
}  # fmt: skip
_MONTH = "(?P<m>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_DATE_MD = re.compile(
    rf"\b{_MONTH}\.?\s+(?P<d>[0-9]{{1,2}})(?:st|nd|rd|th)?\b(?![,.]?[0-9])(?:,?\s+(?P<y>[0-9]{{4}})\b)?"
)
_DATE_DM = re.compile(rf"\b(?P<d>[0-9]{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b\.?(?:,?\s+(?P<y>[0-9]{{4}})\b)?")
_DATE_M = re.compile(rf"\b{_MONTH}\b\.?(?:,?\s+(?P<y>[0-9]{{4}})\b)?")
_LONG_BEFORE = re.compile(r"\bLong\s+$", re.IGNORECASE)
# A month named alone is a date only after words like these: "May" is a verb, "March" a noun, "Jan" a name.
_MONTH_CONTEXT = re.compile(
    r"(?:\b(?:in|since|until|till|by|from|early|late|mid|of|last|next|this|on|during|before|after|through|"
    r"between|and|to|end)[\s-]+)$",
    re.IGNORECASE,
)
_SKIP_IF = (
    (("://", "www."), re.compile(r"\b(?:https?://|www\.)[!-~]+")),
    (("@",), re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    ((":",), re.compile(r"\b[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?\b")),
    (("/",), re.compile(r"\b[0-9]+/[0-9]+\b")),
)
# "tens of billions", "hundreds of": too vague to check.
_VAGUE = re.compile(
    r"(?i:tens|hundreds|thousands|millions|billions|dozens|scores)\s+of(?:\s+(?i:thousands|millions|billions))?\b"
)
_VAGUE_WORDS = frozenset({"tens", "hundreds", "thousands", "millions", "billions", "dozens", "scores"})
_FRACTION = re.compile(
    r"(?i:one|two|three|four|five|six|seven|eight|nine|a)[- ](?i:half|halves|thirds?|quarters?|fifths?|sixths?|"
    r"sevenths?|eighths?|ninths?|tenths?)\b"
)
_DECADE = re.compile(r"[0-9]{2,4}s\b")
_WORD_TOKEN = re.compile(r"[a-z]+")
_INTERESTING_WORDS = (
    _VAGUE_WORDS | frozenset(WORD_VALUES) | frozenset(_ORDINAL_WORDS) | frozenset(m.lower() for m in _MONTHS)
)
_NUMBER_START = re.compile(r"(?<![0-9.,])[0-9]")
_CURRENCY_BEFORE = re.compile(
    r"(?:HK\$|US\$|NT\$|S\$|A\$|C\$|(?:RMB|CNY|USD|HKD|TWD|JPY|EUR|GBP|KRW) ?|\$|€|£|¥|￥|₩)$"
)
_ORDINAL_DIGITS = re.compile(r"[0-9]{1,3}(?:st|nd|rd|th)\b")
# "one-third", "every second", "a third of": fractions and rates, not ranks.
_NOT_ORDINAL_BEFORE = re.compile(r"(?:\b(?i:one|per|every|two|three)[\s-])$")
_FRACTION_AFTER = re.compile(r"\s+of\b|\s*[,.;:)]|\s*$")
_NUMBER = re.compile(
    r"(?<![0-9])(?P<cur>HK\$|US\$|NT\$|S\$|A\$|C\$|(?:RMB|CNY|USD|HKD|TWD|JPY|EUR|GBP|KRW) ?|\$|€|£|¥|￥|₩)?"
    rf"(?P<num>[0-9]{{1,3}}(?:,[0-9]{{3}})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?|\b(?i:{_WORDS})\b)"
    r"(?:[ -]?(?P<scale>(?i:hundred|thousand|million|billion|trillion))\b|(?P<abbr>bn|mn|tn|trn|k|m|b)\b)?"
    # "three hundred (and) fifty" is one figure, 350, not 300 and 50
    rf"(?:(?<=(?i:hundred))\s+(?i:and\s+)?(?P<rest>\b(?i:{_WORDS})\b))?"
    r"(?:\s?(?P<pct>%|(?i:percent|per cent|percentage points?|pct)\b))?"
)
_SUFFIX = re.compile(
    r"\s*(?:(?i:(?P<cur>"
    + "|".join(re.escape(k) for k in sorted(_CURRENCY_SUFFIX, key=len, reverse=True))
    + r")s?(?: sterling)?)\b|(?P<mult>[ -]?(?i:times|fold)\b|x\b))"
)
_QUALIFIER = re.compile(
    r"\b(?P<q>about|around|approximately|approx\.|roughly|some|an estimated|estimated|nearly|almost|close to|"
    r"just under|more than|over|above|at least|in excess of|upwards of|exceeding|topping|as many as|as much as|"
    r"as high as|less than|fewer than|under|below|up to|just over|well over|well above|well below|"
    r"at most|no more than)\s+$",
    re.IGNORECASE,
)
_LOWER_BOUND = frozenset(
    "more than|over|above|at least|in excess of|upwards of|exceeding|topping|as many as|as much as|as high as|"
    "just over|well over|well above".split("|")
)
_UPPER_BOUND = frozenset(
    {"less than", "fewer than", "under", "below", "up to", "well below", "at most", "no more than"}
)
_NEAR = frozenset({"nearly", "almost", "close to", "just under"})
_PRONOUN_BEFORE = re.compile(
    r"\b(?i:no|any|every|each|the|this|that|which|only|as|such|at|little|big|last|next|another|one|by)\s+$"
)
_PRONOUN_AFTER = re.compile(r"^(?:\s+(?i:of|another|or|by|after|who|that|which)\b|['’-])")
_HYPHEN_WORDS = frozenset({"mid", "pre", "post", "early", "late", "end", "over", "under", "top", "about", "some"})
_RANGE_JOIN = re.compile(r"^\s*(?:-|–|—|to|and|or)\s*$")


@dataclass(frozen=True)
class Mention:
    """One figure as written in English: every part must be found in the source."""

    text: str
    start: int
    end: int
    parts: tuple[Quantity, ...]


@dataclass(frozen=True)
class NameNumber:
    """A number inside a name ("GPT-4", "Qwen2.5"): checked verbatim, never as a figure."""

    text: str
    start: int
    end: int


@dataclass
class _Raw:
    start: int
    end: int
    base: float
    step: float  # the stated precision: one unit of the last written digit
    scale: float
    percent: bool
    currency: str | None
    multiple: bool
    year_like: bool
    qualifier: str | None


def extract_english(text: str, *, source: bool = False) -> tuple[list[Mention], list[NameNumber]]:
    """Find figures in English text; `source=True` skips those glued to CJK (the CJK reader owns them)."""
    taken = bytearray(len(text))
    for needles, pattern in _SKIP_IF:
        if any(needle in text for needle in needles):
            for match in pattern.finditer(text):
                _take(taken, match.start(), match.end())
    # Regex alternations tried at every offset are slow; try them only where a word or a digit starts.
    lowered = text.lower()
    if len(lowered) != len(text):  # a few non-ASCII letters change length when lowercased
        lowered = "".join(c.lower() if c.isascii() else c for c in text)
    words = [
        (m.start(), text[m.start() : m.end()]) for m in _WORD_TOKEN.finditer(lowered) if m.group() in _INTERESTING_WORDS
    ]
    digits = [m.start() for m in _NUMBER_START.finditer(text)]
    for start, word in words:
        if word.lower() in _VAGUE_WORDS and (vague := _VAGUE.match(text, start)):
            _take(taken, start, vague.end())
        elif word.lower() in _NUMBER_WORDS and (fraction := _FRACTION.match(text, start)):
            _take(taken, start, fraction.end())  # "two-thirds": not checked
    for start in digits:
        if decade := _DECADE.match(text, start):
            _take(taken, start - (text[start - 1 : start] == "'"), decade.end())
    mentions = _dates(text, taken, words, digits) + _ordinals(text, taken, words, digits)
    candidates = sorted(
        [_currency_start(text, d) for d in digits] + [s for s, w in words if w.lower() in _NUMBER_WORDS]
    )
    names: list[NameNumber] = []
    raws: list[_Raw] = []
    for start in candidates:
        number = _NUMBER.match(text, start)
        if number is None or any(taken[number.start() : number.end()]):
            continue
        _take(taken, number.start(), number.end())
        raw_or_name = _number(text, number, source)
        if isinstance(raw_or_name, NameNumber):
            names.append(raw_or_name)
        elif raw_or_name is not None:
            raws.append(raw_or_name)
    _share_ranges(text, raws)
    mentions.extend(_to_mention(text, raw, source) for raw in raws)
    mentions.sort(key=lambda m: m.start)
    return mentions, names


def _currency_start(text: str, digit: int) -> int:
    prefix = _CURRENCY_BEFORE.search(text, max(0, digit - 4), digit)
    return prefix.start() if prefix else digit


def _take(taken: bytearray, start: int, end: int) -> None:
    taken[start:end] = b"\x01" * (end - start)


def _dates(text: str, taken: bytearray, words: list[tuple[int, str]], digits: list[int]) -> list[Mention]:
    found: list[Mention] = []
    months = [start for start, word in words if word in _MONTHS]
    for pattern, starts in ((_DATE_MD, months), (_DATE_DM, digits), (_DATE_M, months)):
        for at in starts:
            match = pattern.match(text, at)
            if match is None or any(taken[match.start() : match.end()]):
                continue
            month_name, day, year = match.group("m"), match.groupdict().get("d"), match.group("y")
            if day is not None and not 1 <= int(day) <= 31:
                continue
            if month_name.lower() == "march" and _LONG_BEFORE.search(text, max(0, at - 8), at):
                continue  # "Long March 12" is China's rocket (長征十二號), not 12 March: its 12 is a plain figure
            # A month alone counts where a date is expected ("in May", "since July"), not in "the March of time".
            if pattern is _DATE_M and year is None and not _MONTH_CONTEXT.search(text, max(0, at - 12), at):
                continue
            start, end = match.start(), match.end()
            written = text[start:end].rstrip(".")
            parts = [Quantity.exact(_MONTHS[month_name], "month", written, start, end)]
            if day is not None:
                parts.append(Quantity.exact(int(day), "day", written, start, end))
            if year is not None:
                parts.append(Quantity.exact(int(year), "year", written, start, end))
            _take(taken, start, end)
            found.append(Mention(written, start, start + len(written), tuple(parts)))
    return found


def _ordinals(text: str, taken: bytearray, words: list[tuple[int, str]], digits: list[int]) -> list[Mention]:
    found: list[Mention] = []
    spots = [(d, _ORDINAL_DIGITS.match(text, d)) for d in digits]
    hits = [(m.start(), m.end(), int(m.group()[:-2])) for _, m in spots if m]
    for start, word in words:
        value = _ORDINAL_WORDS.get(word.lower())
        if value and not text.startswith(("-hand", " half"), start + len(word)):  # "second half": 下半年
            hits.append((start, start + len(word), value))
    for start, end, value in sorted(hits):
        if any(taken[start:end]) or _NOT_ORDINAL_BEFORE.search(text, max(0, start - 6), start):
            continue
        if re.search(r"\b[Aa]\s$", text[max(0, start - 3) : start]) and (
            text[start:end].lower() == "second" or _FRACTION_AFTER.match(text, end)
        ):
            continue  # "a second time" (再次), "a third of"
        _take(taken, start, end)
        written = text[start:end]
        found.append(Mention(written, start, end, (Quantity.exact(value, "ordinal", written, start, end),)))
    return found


def _number(text: str, match: re.Match[str], source: bool) -> _Raw | NameNumber | None:
    start, end = match.start(), match.end()
    num, cur, abbr = match.group("num"), match.group("cur"), match.group("abbr")
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if (before and CJK_CHAR.match(before)) or (after and CJK_CHAR.match(after)):
        return None  # glued to CJK: an untranslated fragment in prose, the CJK reader's job in a source
    is_word = num[0].isalpha()
    if abbr and abbr.lower() in ("k", "m", "b") and not cur:
        return _name_number(text, start, end, source)  # "5m" may be metres, "7B" a model size
    if not is_word and not cur:
        glued_left = before.isascii() and before.isalpha()
        if before and before in "-._" and start >= 2 and text[start - 2].isascii() and text[start - 2].isalpha():
            prefix = re.search(r"[A-Za-z]+$", text[max(0, start - 12) : start - 1])
            glued_left = prefix is None or prefix.group().lower() not in _HYPHEN_WORDS
        if glued_left or (after.isascii() and after.isalpha() and not match.group("scale") and not match.group("pct")):
            if after == "x" and not glued_left:
                pass  # "3x": a multiple
            else:
                return _name_number(text, start, end, source)
    if is_word:
        word = num.lower()
        if before == "-" or (word == "one" and _is_pronoun(text, start, end, match)):
            return None
        base = float(WORD_VALUES.get(word) or _compound(word))
        step = 1.0
        rest = match.group("rest")
        if rest:  # "three hundred fifty": the hundreds and the rest, one figure
            base = base * 100 + (WORD_VALUES.get(rest.lower()) or _compound(rest.lower()))
    else:
        base = float(num.replace(",", ""))
        decimals = len(num.split(".")[1]) if "." in num else 0
        step = 10.0**-decimals
    scale = _SCALE_WORDS.get((match.group("scale") or "").lower()) or _SCALE_ABBR.get((abbr or "").lower(), 1.0)
    if match.group("rest"):
        scale = 1.0  # the hundred is already in `base`
    currency = _CURRENCY_PREFIX.get(cur.strip()) if cur else None
    suffix = _SUFFIX.match(text, end)
    multiple = False
    if suffix and not match.group("pct"):
        if suffix.group("cur"):
            currency = currency or _CURRENCY_SUFFIX[suffix.group("cur").lower()]
        elif suffix.group("mult"):
            multiple = True
    qualifier = _QUALIFIER.search(text[max(0, start - 25) : start])
    year_like = (
        not is_word and "," not in num and "." not in num and scale == 1.0 and 1900 <= base <= 2100 and not currency
    )
    return _Raw(
        start, end, base, step, scale, bool(match.group("pct")), currency, multiple, year_like,
        qualifier.group("q").lower() if qualifier else None,
    )  # fmt: skip


def _compound(word: str) -> int:
    tens, _, ones = word.partition("-")
    return WORD_VALUES[tens] + WORD_VALUES.get(ones, 0)


def _is_pronoun(text: str, start: int, end: int, match: re.Match[str]) -> bool:
    if match.group("scale") or match.group("pct"):
        return False
    return bool(_PRONOUN_BEFORE.search(text[max(0, start - 12) : start]) or _PRONOUN_AFTER.search(text[end : end + 9]))


def _name_number(text: str, start: int, end: int, source: bool) -> NameNumber | None:
    if source:
        return None
    left, right = start, end
    while left > 0 and (text[left - 1].isascii() and (text[left - 1].isalnum() or text[left - 1] in "-._")):
        left -= 1
    while right < len(text) and text[right].isascii() and (text[right].isalnum() or text[right] in "-._"):
        right += 1
    token = text[left:right].strip("-._")
    left = text.find(token, left)
    if re.fullmatch(r"[0-9]+s", token):
        return None  # a decade
    return NameNumber(token, left, left + len(token))


def _share_ranges(text: str, raws: list[_Raw]) -> None:
    """In "20 to 30 billion" and "30-40%" the first number takes the second's scale and unit."""
    for first, second in zip(reversed(raws[:-1]), reversed(raws[1:]), strict=True):
        if first.scale == 1.0 and not first.percent and not first.currency and not first.year_like:
            if _RANGE_JOIN.match(text[first.end : second.start]):
                first.scale, first.percent, first.currency = second.scale, second.percent, second.currency


def _to_mention(text: str, raw: _Raw, source: bool) -> Mention:
    value = raw.base * raw.scale
    unit: Unit
    if raw.percent:
        unit = "percent"
    elif raw.currency:
        unit = "money"
    elif raw.multiple:
        unit = "multiple"
    elif raw.year_like:
        unit = "year"
    else:
        unit = "count"
    # English rounds what it renders; a source's "7%" means 7, not anything from 6.5 to 7.5.
    half = 0.0 if unit == "year" or source else raw.step * raw.scale / 2
    lo, hi = value - half, value + half
    if raw.qualifier in _LOWER_BOUND:
        hi = value * 1.5
    elif raw.qualifier in _UPPER_BOUND:
        lo = value * 0.5
    elif raw.qualifier in _NEAR:
        lo = min(lo, value * 0.85)
    elif raw.qualifier:
        lo, hi = min(lo, value * 0.9), max(hi, value * 1.1)
    if unit == "year" and raw.qualifier:
        unit = "count"  # "some 2000 people"
    written = text[raw.start : raw.end]
    quantity = Quantity(value, unit, lo, hi, written, raw.start, raw.end, raw.currency)
    return Mention(written, raw.start, raw.end, (quantity,))
