"""Number check: English figures must match a figure the source states, in any of its written forms."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.checks import check_article, repair_instructions, source_facts
from pipeline.records import CheckFlag


def number_flags(source: str, english: str) -> list[CheckFlag]:
    return [f for f in check_article(source, {"summary": english}) if f.kind == "number"]


# (source, a faithful English rendering, an unfaithful one, the fragment that must be flagged)
CASES = [
    # 億/亿 and 萬/万, Simplified and Traditional, with and without a currency
    ("早前3轮措施动用200亿港元。", "The earlier three rounds used HK$20 billion.",
     "The earlier three rounds used a total of 200 billion Hong Kong dollars.", "200 billion"),
    ("早前3輪措施動用200億港元。", "They cost 20 billion Hong Kong dollars.", "They cost 2 billion Hong Kong dollars.",
     "2 billion"),
    ("全港約3,853萬人次受惠。", "About 38.5 million people benefited.", "About 3.853 million people benefited.",
     "3.853 million"),
    ("公司投資1.25億美元。", "It invested US$125 million.", "It invested US$1.25 billion.", "US$1.25 billion"),
    ("吸引三千五百万名游客。", "It drew 35 million visitors.", "It drew 3.5 million visitors.", "3.5 million"),
    ("政府動用人民币1.5万亿元。", "It spent 1.5 trillion yuan.", "It spent 15 trillion yuan.", "15 trillion"),
    ("一亿二千万人受影响。", "120 million people were affected.", "12 million people were affected.", "12 million"),
    ("新台幣1兆元的預算", "a NT$1 trillion budget", "a NT$1 billion budget", "NT$1 billion"),
    ("預算為3千萬元。", "The budget is 30 million.", "The budget is 3 million.", "3 million"),
    # 千, 百, 十 and Chinese numerals, 兩/二/〇/零
    ("裁员三千人。", "3,000 jobs were cut.", "30,000 jobs were cut.", "30,000"),
    ("招聘三百名员工。", "It hires 300 staff.", "It hires 3,000 staff.", "3,000"),
    ("共有十二家银行参与。", "Twelve banks took part.", "Twenty banks took part.", "Twenty"),
    ("二十三名议员反对。", "23 lawmakers objected.", "32 lawmakers objected.", "32"),
    ("兩家公司合併。", "Two companies merged.", "Three companies merged.", "Three"),
    # "three hundred (and) fifty" is one figure (both seen in real-model runs, read as "fifty" alone)
    ("每天能賣出兩百多杯。", "It sold two hundred and fifty cups a day.", "It sold four hundred and fifty cups a day.",
     "four hundred and fifty"),
    ("店面每月租金三千五百元。", "Rent was 3,500 yuan a month.", "Rent was three hundred fifty yuan a month.",
     "three hundred fifty"),
    # 七、八月 is July and August: the listed numeral shares the month (a 1.5B run's July was flagged)
    ("預估七、八月尖峰負載上升。", "Peak load rises in July.", "Peak load rises in June.", "June"),
    # "Long March 12" is the rocket 長征十二號, not 12 March (a 1.5B model's translation was flagged as a date)
    ("長征十二號甲運載火箭12月23日發射。", "The Long March 12 rocket launched on December 23.",
     "The Long March 13 rocket launched on December 23.", "13"),
    ("十家企業倒閉。", "Ten firms closed.", "Eleven firms closed.", "Eleven"),
    ("七八个国家参加。", "Eight countries took part.", "Nine countries took part.", "Nine"),
    ("裁员三千零五人。", "3,005 jobs went.", "3,500 jobs went.", "3,500"),
    # percentages: %, full-width, 百分之, 个百分点, 成, 割
    ("失业率升至6.2%。", "Unemployment rose to 6.2%.", "Unemployment rose to 6.8%.", "6.8%"),
    ("出口增長１２．５％。", "Exports grew 12.5 percent.", "Exports grew 125 percent.", "125 percent"),
    ("出口增长百分之三十五。", "Exports grew 35%.", "Exports grew 53%.", "53%"),
    ("利润增长百分之十二点五。", "Profit rose 12.5 per cent.", "Profit rose 15 per cent.", "15 per cent"),
    ("利率上調0.25個百分點。", "Rates rose 0.25 percentage points.", "Rates rose 0.5 percentage points.",
     "0.5 percentage points"),
    ("约三成企业受影响。", "About 30% of firms were hit.", "About 3% of firms were hit.", "3%"),
    ("三成五市民支持。", "35 percent of residents agree.", "53 percent of residents agree.", "53 percent"),
    ("支持率は3割にとどまった。", "Support was 30%.", "Support was 3%.", "3%"),
    ("佔比38.6%。", "It is nearly 40% of the total.", "It is 40% of the total.", "40%"),
    # money: currency symbols and words, plain numbers for money and back
    ("早前动用200亿港元。", "It used 20 billion.", "It used 200 billion.", "200 billion"),
    ("早前动用200亿港元。", "It used HK$20 billion.", "It used US$20 billion.", "US$20 billion"),
    ("投资20亿美元。", "It invested $2 billion.", "It invested $20 billion.", "$20 billion"),
    ("投资20亿。", "It invested US$2 billion.", "It invested US$20 billion.", "US$20 billion"),
    ("売上高は1兆円に達した。", "Sales reached 1 trillion yen.", "Sales reached 1 billion yen.", "1 billion"),
    ("50億円を投じる。", "It will spend ¥5 billion.", "It will spend ¥50 billion.", "¥50 billion"),
    ("약 3억 5천만 원을 지원한다.", "It provides 350 million won.", "It provides 3.5 billion won.", "3.5 billion"),
    ("約3万人が参加した。", "About 30,000 people took part.", "About 300,000 people took part.", "300,000"),
    ("装机5兆瓦。", "It has 5 megawatts installed.", "It has 50 megawatts installed.", "50"),
    # precision and hedges: the English may not claim more than the source says
    ("投资20.3亿元。", "It invested 2.03 billion.", "It invested 2.3 billion.", "2.3 billion"),
    ("早前动用200亿港元。", "It used 20 billion.", "It used 20.5 billion.", "20.5 billion"),
    ("逾3,853萬人次受惠。", "More than 38 million people benefited.", "More than 3.8 million people benefited.",
     "3.8 million"),
    ("投资200多亿元。", "It invested more than 20 billion yuan.", "It invested 200 billion yuan.", "200 billion"),
    ("共3853人受傷。", "3,853 people were hurt.", "3,583 people were hurt.", "3,583"),
    # years, months, days, dates in every script
    ("二〇二五年推出。", "It launches in 2025.", "It launches in 2052.", "2052"),
    ("二零二四年通过。", "It passed in 2024.", "It passed in 2014.", "2014"),
    ("2024年的数据", "data for 2024", "data for 2023", "2023"),
    ("十二月生效。", "It takes effect in December.", "It takes effect in November.", "November"),
    ("2025年07月03日公布。", "Published on July 3, 2025.", "Published on July 13, 2025.", "July 13, 2025"),
    ("7月3日宣布。", "Announced on 3 July.", "Announced on 4 July.", "4 July"),
    ("2025-07-03", "On July 3", "On August 3", "August 3"),
    ("2025년 7월 출시", "launched in July 2025", "launched in June 2025", "June 2025"),
    ("8月12日刊文", "an article on Aug. 12", "an article on Aug. 21", "Aug. 21"),
    # ordinals and counts, in figures and in words
    ("第三轮措施", "the third round of measures", "the fourth round of measures", "fourth"),
    ("早前3轮措施", "the 3rd round", "the 5th round", "5th"),
    ("第四輪措施", "a fourth round", "a sixth round", "sixth"),
    ("三家银行参与", "three banks took part", "four banks took part", "four"),
    ("销量增长了2倍。", "Sales grew three times over.", "Sales grew five times over.", "five"),
    ("出口增加两倍。", "Exports grew two-fold.", "Exports grew six-fold.", "six"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "good", "bad", "flagged"), CASES, ids=[f"{i:02d}:{c[3]}" for i, c in enumerate(CASES)]
)
def test_faithful_figures_pass_and_wrong_ones_are_flagged(source: str, good: str, bad: str, flagged: str) -> None:
    assert number_flags(source, good) == []
    flags = number_flags(source, bad)
    assert [f.text for f in flags] == [flagged]


def test_the_ten_times_slip_names_the_source_figure() -> None:
    source = "特区政府宣布第四轮措施。早前3轮措施动用200亿港元。"
    english = (
        "The government announced a fourth round. The earlier rounds used a total of 200 billion Hong Kong dollars."
    )
    (flag,) = check_article(source, {"summary": english})
    assert flag.kind == "number" and flag.field == "summary"
    assert flag.sentence == "The earlier rounds used a total of 200 billion Hong Kong dollars."
    assert flag.message == '"200 billion" does not match any figure in the source'
    assert flag.suggestions[0] == "200亿港元 = HK$20 billion"
    assert (
        '"200 billion" does not match any figure in the source; the source has 200亿港元 = HK$20 billion'
        in repair_instructions([flag])
    )


@pytest.mark.parametrize(
    "english",
    [
        "One of the banks objected.",  # "one" as a pronoun
        "No one expected the result.",
        "Each one of them agreed, one by one.",
        "Tens of billions of dollars were spent.",  # vague amounts are not checked
        "Hundreds of millions of users signed up in the 1990s.",
        "The talks began at 9:30 and ended at 10:15.",
        "The one-off payment was made.",
        "Visit https://example.com/2025/07/03 or mail news2025@example.com.",
        "Markets may fall, and the March of progress continues.",
    ],
)
def test_words_that_are_not_figures_are_left_alone(english: str) -> None:
    assert number_flags("政府宣布新措施。", english) == []


@pytest.mark.parametrize(
    ("english", "flagged"),
    [
        ("OpenAI released GPT-4 and Alibaba released Qwen2.5.", []),
        ("The 7B model and COVID-19 rules, Z.ai and R1.", []),  # names the source does not write differently
        ("OpenAI released GPT-5.", ["GPT-5"]),  # the source names another version
        ("Alibaba released Qwen3.", ["Qwen3"]),
    ],
)
def test_numbers_in_names_match_the_source_verbatim(english: str, flagged: list[str]) -> None:
    source = "OpenAI發佈GPT-4，阿里巴巴推出Qwen2.5。新冠疫情期間，Z.ai和DeepSeek的R1受關注。"
    assert [f.text for f in number_flags(source, english)] == flagged


def test_a_name_number_flag_suggests_the_sources_version() -> None:
    (flag,) = number_flags("OpenAI發佈GPT-4。", "OpenAI released GPT-5.")
    assert flag.suggestions == ("GPT-4",)


def test_an_english_source_is_read_exactly() -> None:
    source = "Hong Kong unveiled a HK$30 billion package on July 3, 2025. GDP would shrink 4-7% this year."
    assert number_flags(source, "A HK$30bn package was unveiled on July 3. GDP may shrink 4% to 7%.") == []
    flags = number_flags(source, "A HK$3 billion package came on July 4. GDP may shrink 6.8%.")
    assert [(f.text, f.suggestions[0]) for f in flags] == [
        ("HK$3 billion", "HK$30 billion"),
        ("July 4", "July 3, 2025"),
        ("6.8%", "7%"),  # the source's "7%" is 7, not "6.5 to 7.5"
    ]


def test_ranges_share_their_unit_and_scale() -> None:
    source = "预计投资200亿至300亿元，占比30%至40%。"
    assert number_flags(source, "It expects 20 to 30 billion yuan, or 30-40% of the total.") == []
    assert [f.text for f in number_flags(source, "It expects 2 to 3 billion yuan.")] == ["2", "3 billion"]


def test_every_field_is_checked_and_named() -> None:
    fields = {"title": "Rates up 6%", "summary": "Rates rose 5%.", "key_points": ["Rates rose 5%.", "Up 7%."]}
    flags = check_article("利率上升5%。", fields)
    assert [(f.field, f.text) for f in flags] == [("title", "6%"), ("key_points[1]", "7%")]


def test_the_overview_is_checked_against_every_source() -> None:
    from pipeline.checks import check_overview

    sources = ["早前动用200亿港元。", "失业率升至6.2%。"]
    assert check_overview("HK$20 billion was spent; unemployment is 6.2%.", sources) == []
    (flag,) = check_overview("HK$20 billion was spent; unemployment is 7.2%.", [source_facts(s) for s in sources])
    assert (flag.field, flag.text) == ("overview", "7.2%")


@pytest.mark.parametrize(
    ("source", "value", "unit"),
    [
        ("三千五百万", 35_000_000, "count"),
        ("1.2万亿", 1.2e12, "count"),
        ("一亿二千万", 120_000_000, "count"),
        ("1兆2000億円", 1.2e12, "money"),
        ("3,853萬", 38_530_000, "count"),
        ("３８５３萬", 38_530_000, "count"),
        ("二〇二五年", 2025, "year"),
        ("十二月", 12, "month"),
        ("三日", 3, "day"),
        ("三成", 30, "percent"),
        ("百分之十二点五", 12.5, "percent"),
        ("第二十三", 23, "ordinal"),
        ("三点五亿", 350_000_000, "count"),
        ("3억 5천만 원", 350_000_000, "money"),
    ],
)
def test_source_forms_are_read_to_their_value(source: str, value: float, unit: str) -> None:
    (quantity,) = source_facts(source).quantities
    assert quantity.value == pytest.approx(value)
    assert quantity.unit == unit


@pytest.mark.parametrize("word", ["一直", "三星", "通义千问", "两岸", "万一", "十分重要"])
def test_numerals_inside_ordinary_words_are_not_figures(word: str) -> None:
    assert source_facts(word).quantities == ()


def test_malformed_input_does_not_crash() -> None:
    fields: dict[str, Any] = {"summary": "$ 1e9 ,,, 3.. %% 2025-13-45 July 99", "key_points": ["", "—", "１２", None]}
    fields["extra"] = None
    assert isinstance(check_article("亿亿万 %% 第 百分之 2025-99-99 ０．", fields), list)


_PIECES = "200 億 亿 万 3,853 1.25 十 二 〇 成 % 年 月 日 第 HK$ billion . - July one third".split()
_PIECES += "GPT- Qwen 約 多 兆 円 원 억".split() + [" "]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES) | st.text(max_size=3), max_size=30),
    st.lists(st.sampled_from(_PIECES), max_size=30),
)
def test_any_mix_of_number_forms_is_handled(source: list[str], english: list[str]) -> None:
    flags = check_article("".join(source), {"summary": "".join(english)})
    assert all(f.kind in ("number", "untranslated") for f in flags)
    assert all(f.text and f.text in "".join(english) and f.text in f.sentence for f in flags)
