"""Figures in the source text: Chinese, Japanese and Korean number forms, plus any English ones."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.checks.english import extract_english
from pipeline.checks.quantity import Quantity, Unit

# Full-width digits and signs, one character for one so offsets keep pointing into the original.
_FULL_WIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)} | {"．": ".", "％": "%", "＄": "$"})
_HAS_FULL_WIDTH = re.compile("[０-９．％＄]")
_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
           "八": 8, "九": 9}  # fmt: skip
_SMALL = {"十": 10, "百": 100, "千": 1000, "십": 10, "백": 100, "천": 1000}
_BIG = {"万": 1e4, "萬": 1e4, "亿": 1e8, "億": 1e8, "兆": 1e12, "만": 1e4, "억": 1e8, "조": 1e12}
_NUMERALS = "".join(_DIGITS) + "".join(_SMALL) + "".join(_BIG)
_ARABIC = r"[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?"
_RUN = re.compile(
    rf"(?:{_ARABIC}|[{_NUMERALS}])(?:{_ARABIC}|[{_NUMERALS}]|[多余餘几幾来來](?=[{''.join(_SMALL)}{''.join(_BIG)}])"
    r"|[点點](?=[〇零一二三四五六七八九])"
    r"|(?<=[만억조천])\s(?=[0-9]))*"
)
_TOKEN = re.compile(rf"{_ARABIC}|\S")
_CURRENCY_NAMES = {
    "HKD": "港元 港币 港幣 港圓 香港ドル",
    "USD": "美元 美金",
    "JPY": "日元 日圆 日圓 円 엔",
    "EUR": "欧元 歐元 ユーロ 유로",
    "GBP": "英镑 英鎊",
    "KRW": "韩元 韓元 원 ウォン",
    "AUD": "澳元",
    "TWD": "新台币 新台幣 台币 台幣",
    "CNY": "人民币 人民幣 元人民币 元人民幣 위안",
    "$": "달러 ドル",
    "": "元 块 塊 圆 圓",  # whose yuan/dollar the article does not say
}
_CURRENCIES = {name: code or None for code, names in _CURRENCY_NAMES.items() for name in names.split()}
_CURRENCY_WORDS = "|".join(sorted((re.escape(k) for k in _CURRENCIES), key=len, reverse=True))
_SUFFIX = re.compile(
    r"[多余餘来來]?\s?(?:"
    r"(?P<pct>%p|%|个百分点|個百分點|百分点|百分點|퍼센트|パーセント|포인트)"
    r"|(?P<cheng>成)(?P<tenth>[一二三四五六七八九0-9])?(?![为為立功长長员員交熟就本果绩績品型份])"
    r"|(?P<wari>割)|(?P<bei>倍|배)"
    rf"|(?P<cur>{_CURRENCY_WORDS})"
    r"|(?P<year>年|년)(?!代)|(?P<month>月|월)|(?P<day>日|号|號|일)"
    r")"
)
_PREFIX_CURRENCY = re.compile(
    r"(?P<cur>港币|港幣|人民币|人民幣|新台币|新台幣|台币|台幣|美金|HK\$|US\$|NT\$|RMB|\$|¥|￥|€|£|₩)\s?$"
)
_PREFIX_CURRENCY_CODES = {"HK$": "HKD", "US$": "USD", "NT$": "TWD", "RMB": "CNY", "$": "$", "¥": "¥", "￥": "¥",
                          "€": "EUR", "£": "GBP", "₩": "KRW", "美金": "USD"}  # fmt: skip
_AROUND = "约|約|大约|大約|约合|約合|大概|左右|上下|前後|前后|程度|정도|약"
_OVER = "逾|超过|超過|超|多达|多達|至少|以上|高达|高達|不少于|不少於|之多|余|餘|多|出头|出頭|이상"
_UNDER = "近|将近|將近|接近|不到|不足|最多|以下|未满|未滿|미만|이하"
# Each kind's words, tried in this order just after a figure and just before it.
_HEDGES = tuple(
    (tuple(words.split("|")), kind) for words, kind in ((_OVER, "over"), (_UNDER, "under"), (_AROUND, "around"))
)
_VAGUE_BEFORE = ("几", "幾", "数", "數", "上")
# A hedge word can only start with one of these just after a figure, or end with one of these just before it.
_HEDGE_FIRST = frozenset(word[0] for words, _ in _HEDGES for word in words)
_HEDGE_LAST = frozenset(word[-1] for words, _ in _HEDGES for word in words)
_ARABIC_ONLY = re.compile(_ARABIC)
_UNIT_CHARS = frozenset(_SMALL) | frozenset(_BIG)
_SQUASHED = re.compile(r"[\s\-_]")
# Words in which a lone numeral is no figure (一直, 三星 Samsung, 四川 Sichuan). Any other lone numeral
# counts: extra source figures only make the check more lenient, a missing one raises a false alarm.
_NOT_NUMBERS = frozenset(
    """一直 一些 一起 一样 一樣 一般 一定 一致 一切 一旦 一度 一向 一再 一同 一带 一帶 一路 统一 統一 唯一
    万一 萬一 一一 一流 一体 一體 一律 一边 一邊 一面 一方 三星 三菱 五菱 四川 九龙 九龍 三亚 三亞 三峡 三峽
    五角 八达 八達 十分 千万 千萬 万达 萬達 千问 千問 百度 百姓 百货 百貨 万科 萬科 二手 五金 两岸 兩岸
    万物 萬物 万岁 萬歲 千禧 百分""".split()
)
_BOTH_SIDES = re.compile("[双雙][方边邊]")
_MEGA = re.compile(r"兆(?=瓦|赫|字节|字節|位|帕|焦|欧|歐|比特|像素)")
_ISO_DATE = re.compile(r"(?<![0-9])([12][0-9]{3})[-/.]([01]?[0-9])[-/.]([0-3]?[0-9])(?![0-9])")
_RANGE_PAIR = re.compile("一二|二三|三四|四五|五六|六七|七八|八九")


@dataclass(frozen=True)
class SourceFacts:
    """What the checks need from one source text, computed once."""

    text: str
    quantities: tuple[Quantity, ...]
    squashed: str  # casefolded, without spaces, hyphens and underscores: "gpt-4" and "GPT 4" meet


def source_facts(text: str) -> SourceFacts:
    """Every figure in a source: ISO dates, English forms, then CJK forms on what is left."""
    if _HAS_FULL_WIDTH.search(text):
        text = text.translate(_FULL_WIDTH)
    found: list[Quantity] = []
    blanks: list[tuple[int, int]] = []
    for match in _ISO_DATE.finditer(text):
        year, month, day = (int(g) for g in match.groups())
        if 1 <= month <= 12 and 1 <= day <= 31:
            start, end, written = match.start(), match.end(), match.group()
            found.append(Quantity.exact(year, "year", written, start, end))
            found.append(Quantity.exact(month, "month", written, start, end))
            found.append(Quantity.exact(day, "day", written, start, end))
            blanks.append((start, end))
    blanked = _blank(text, blanks)
    mentions, _ = extract_english(blanked, source=True)
    for mention in mentions:
        found.extend(mention.parts)
    blanked = _blank(blanked, [(m.start, m.end) for m in mentions])
    for match in _RUN.finditer(blanked):
        quantity = _quantity(text, blanked, match)
        if quantity is not None:
            found.append(quantity)
    for match in _BOTH_SIDES.finditer(blanked):  # 雙方: "the two sides"
        found.append(Quantity.exact(2, "count", match.group(), match.start(), match.end()))
    found += _shared_units(text, found)
    return SourceFacts(text, tuple(found), _SQUASHED.sub("", text.casefold()))


def _shared_units(text: str, found: list[Quantity]) -> list[Quantity]:
    """七、八月 is July and August: a bare numeral listed before a month or day shares its unit."""
    ordered = sorted(found, key=lambda q: q.start)
    shared: list[Quantity] = []
    for first, then in zip(ordered, ordered[1:], strict=False):
        if first.unit != "count" or then.unit not in ("month", "day") or text[first.end : then.start] not in _LISTED:
            continue
        value = int(first.value)
        if value == first.value and 1 <= value <= (12 if then.unit == "month" else 31):
            shared.append(Quantity.exact(value, then.unit, text[first.start : then.end], first.start, then.end))
    return shared


# What joins a listed numeral to the next: 七、八月, 7,8月, 七至八月, 7-8月.
_LISTED = frozenset({"、", ",", "，", "至", "到", "-", "–", "~", "～", "和", "与", "與", "及"})


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    """Overwrite spans with spaces, keeping every offset."""
    if not spans:
        return text
    pieces: list[str] = []
    last = 0
    for start, end in sorted(spans):
        pieces += [text[last:start], " " * (end - start)]
        last = end
    return "".join(pieces) + text[last:]


def _quantity(original: str, text: str, match: re.Match[str]) -> Quantity | None:
    run, start, end = match.group(), match.start(), match.end()
    if run.strip() in ("万一", "萬一", "一一"):
        return None
    before = text[max(0, start - 4) : start]
    lone = len(run) == 1 and run in _NUMERALS
    ordinal = before.endswith(("第", "제"))
    percent_of = before.endswith("百分之")
    currency_prefix = _PREFIX_CURRENCY.search(before)
    suffix = _SUFFIX.match(text, end)
    if lone and not (ordinal or percent_of or currency_prefix or suffix) and not _counted(text, start, end):
        return None  # 一直, 三星, 千问: a numeral inside a word
    lo_hi = _values(run, mega=bool(_MEGA.match(text, end - 1)))
    if lo_hi is None:
        return None
    lo, hi = lo_hi
    value = lo
    unit: Unit = "count"
    currency: str | None = None
    if currency_prefix:
        unit, currency = "money", _PREFIX_CURRENCY_CODES.get(currency_prefix.group("cur"), "CNY")
        if currency_prefix.group("cur") in ("港币", "港幣"):
            currency = "HKD"
        elif currency_prefix.group("cur") in ("新台币", "新台幣", "台币", "台幣"):
            currency = "TWD"
        start = currency_prefix.start() + max(0, start - 4)
    if ordinal:
        unit = "ordinal"
        start -= 1
    elif percent_of:
        unit = "percent"
        start -= 3
    if suffix:
        unit, factor, currency = _suffix_unit(suffix, value, unit, currency, not _UNIT_CHARS.isdisjoint(run))
        lo, hi = lo * factor, hi * factor
        if suffix.group("tenth"):
            tenth = suffix.group("tenth")
            lo += _DIGITS.get(tenth, int(tenth) if tenth.isdigit() else 0)
            hi = max(hi, lo)
        end = suffix.end()
    stated = lo  # the figure as written; a hedge (约, 近, 逾) widens the range around it, not the figure
    lo, hi = _hedge(text, start, end, run, lo, hi)
    return Quantity(stated, unit, lo, hi, original[start:end], start, end, currency)


def _counted(text: str, start: int, end: int) -> bool:
    return text[max(0, start - 1) : end] not in _NOT_NUMBERS and text[start : end + 1] not in _NOT_NUMBERS


def _suffix_unit(
    suffix: re.Match[str], value: float, unit: Unit, currency: str | None, has_units: bool
) -> tuple[Unit, float, str | None]:
    whole = value == int(value)
    if suffix.group("pct"):
        return "percent", 1.0, currency
    if suffix.group("cheng") or suffix.group("wari"):
        return ("percent", 10.0, currency) if value <= 10 else (unit, 1.0, currency)
    if suffix.group("bei"):
        return "multiple", 1.0, currency
    if suffix.group("cur"):
        return "money", 1.0, currency or _CURRENCIES[suffix.group("cur")]
    if unit in ("ordinal", "percent", "money"):
        return unit, 1.0, currency
    if suffix.group("year"):
        return ("year" if whole and not has_units and 1000 <= value <= 2200 else "count"), 1.0, currency
    if suffix.group("month"):
        return ("month" if whole and 1 <= value <= 12 else "count"), 1.0, currency
    if suffix.group("day"):
        return ("day" if whole and 1 <= value <= 31 else "count"), 1.0, currency
    return unit, 1.0, currency


def _hedge(text: str, start: int, end: int, run: str, lo: float, hi: float) -> tuple[float, float]:
    """Widen the range for 约/近/逾/多/余/左右 and for 几十亿-style vagueness."""
    before, after = text[max(0, start - 4) : start], text[end : end + 3]
    if before.endswith(_VAGUE_BEFORE) or "几" in run or "幾" in run:
        return lo, hi * 10
    if any(c in run for c in "多余餘来來"):
        return lo, max(hi, lo * 1.5)
    # As the regex "(?:words)$" did: a word may also end just before a final line break.
    bare = before[:-1] if before.endswith("\n") else before
    if after[:1] not in _HEDGE_FIRST and before[-1:] not in _HEDGE_LAST and bare[-1:] not in _HEDGE_LAST:
        return lo, hi
    for words, kind in _HEDGES:
        if after.startswith(words) or before.endswith(words) or bare.endswith(words):
            if kind == "over":
                return lo, max(hi, lo * 1.5)
            return (lo * 0.7, hi) if kind == "under" else (lo * 0.9, hi * 1.1)
    return lo, hi


def _values(run: str, *, mega: bool) -> tuple[float, float] | None:
    """Value of a numeral run; 七八个 ("seven or eight") gives a range."""
    if _ARABIC_ONLY.fullmatch(run):  # what _parse makes of plain digits, without its token loop
        plain = float(run.replace(",", ""))
        return plain, plain
    pair = _RANGE_PAIR.search(run)
    if pair and "〇" not in run and "零" not in run:
        low = _parse(run[: pair.start()] + pair.group()[0] + run[pair.end() :], mega)
        high = _parse(run[: pair.start()] + pair.group()[1] + run[pair.end() :], mega)
        if low is not None and high is not None:
            return low, high
    value = _parse(run, mega)
    return None if value is None else (value, value)


def _parse(run: str, mega: bool) -> float | None:
    parts: list[float] = []  # finished groups, each already multiplied by its 万/亿/兆
    small = 0.0
    number: float | None = None
    after_digit = False
    decimal = 0.0  # after 点: the place value of the next digit
    for token in _TOKEN.findall(run):
        if token in _DIGITS:
            digit = _DIGITS[token]
            if decimal:
                number, decimal = (number or 0) + digit * decimal, decimal / 10
                continue
            # 二〇二五: digits side by side are read positionally.
            number = number * 10 + digit if after_digit and number is not None else digit
            after_digit = True
            continue
        after_digit = False
        if token in "点點":
            decimal = 0.1
            continue
        decimal = 0.0
        if token[0].isdigit():
            number = float(token.replace(",", ""))
        elif token in _SMALL:
            small += (number if number is not None else 1) * _SMALL[token]
            number = None
        elif token in _BIG:
            factor = 1.0 if token == "兆" and mega else _BIG[token]  # 5兆瓦 is "5 megawatts"
            lower = sum(p for p in parts if p < factor)
            parts = [p for p in parts if p >= factor]
            group = lower + small + (number or 0)
            parts.append((group or 1) * factor)
            small, number = 0.0, None
    total = sum(parts) + small + (number or 0)
    return total if total or number == 0 else None
