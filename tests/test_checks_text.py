"""Text checks: untranslated fragments, names against the glossary, a whole realistic article, repair text."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.checks import ArticleProse, check_article, check_run_names, mark_unverified, repair_instructions
from pipeline.checks.prose import sentence_spans
from pipeline.records import CheckFlag, GlossaryEntry

LAM = ("林郑月娥", "Lam Cheng Yuet-ngor", "person")
LAM_TRAD = ("林鄭月娥", "Lam Cheng Yuet-ngor", "person")
QWEN = ("通义千问", "Tongyi Qianwen", "product")
# What the caller's CC-CEDICT lookup returns: tone-marked or numbered pinyin, either script.
PINYIN = {
    "林郑月娥": "Lín Zhèng Yuè é",
    "林鄭月娥": "lin2 zheng4 yue4 e2",
    "陈茂波": "Chén Mào bō",
    "陳茂波": "chen2 mao4 bo1",
    "香港金融管理局": "Xiāng gǎng Jīn róng Guǎn lǐ jú",
    "阿里巴巴": "Ā lǐ bā bā",
}


def pinyin_of(term: str) -> str:
    return PINYIN.get(term, "")


def flags_of(kind: str, flags: list[CheckFlag]) -> list[CheckFlag]:
    return [f for f in flags if f.kind == kind]


# --- untranslated fragments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("english", "flagged"),
    [
        ("Chief Executive Lin郑月娥 spoke.", ["Lin郑月娥"]),  # half-translated name
        ("The 特区政府 announced it.", ["特区政府"]),
        ("Toyota (トヨタ) raised prices.", ["トヨタ"]),  # kana, not a glossary term
        ("Samsung, or 삼성, cut output.", ["삼성"]),  # Hangul
        ('The model "通义千问" (Tongyi Qianwen) was updated.', []),  # quoted glossary term: allowed
        ("Tongyi Qianwen (通义千问) was updated.", []),  # bracketed beside its English: allowed
        ("The model 通义千问 was updated.", ["通义千问"]),  # bare: still untranslated
        ('The slogan "同舟共济" was used.', ["同舟共济"]),  # quoted but not a glossary term
        ("Xi met 布拉德·史密斯.", ["布拉德·史密斯"]),  # one fragment across a middle dot
        ("Plain English with café and naïve accents.", []),
    ],
)
def test_cjk_in_english_fields_is_flagged(english: str, flagged: list[str]) -> None:
    flags = flags_of("untranslated", check_article("", {"summary": english}, [LAM, QWEN]))
    assert [f.text for f in flags] == flagged


def test_a_fragment_of_a_glossary_term_suggests_its_english() -> None:
    (flag,) = flags_of("untranslated", check_article("", {"title": "Lin郑月娥 speaks"}, [LAM]))
    assert flag.suggestions == ("Lam Cheng Yuet-ngor",)
    assert flag.message == '"Lin郑月娥" is not translated'
    assert flag.field == "title"


def test_the_other_scripts_form_of_a_term_is_recognised() -> None:
    # The glossary has the Traditional form; the model quoted the Simplified one.
    entry = GlossaryEntry("通義千問", "通义千问", "Tongyi Qianwen", "product")
    assert check_article("阿里的通義千問", {"summary": 'Alibaba\'s "通义千问" (Tongyi Qianwen)'}, [entry]) == []
    # With tuples, an aligned Simplified source text supplies the other form.
    flags = check_article(
        "阿里的通義千問",
        {"summary": 'Alibaba\'s "通义千问" (Tongyi Qianwen)'},
        [("通義千問", "Tongyi Qianwen", "product")],
        source_simplified="阿里的通义千问",
    )
    assert flags == []


# --- names ------------------------------------------------------------------------------------


def name_flags(english: str, glossary: list[tuple[str, str, str]], **kwargs: object) -> list[CheckFlag]:
    return flags_of("name", check_article("", {"summary": english}, glossary, pinyin_of=pinyin_of, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("english", "flagged"),
    [
        ("Lam Cheng Yuet-ngor said the measures would help.", []),
        ("Carrie Lam Cheng Yuet-ngor said so. Lam added more.", []),  # alias beside the glossary form
        ("Lin Zhengyue'e said the measures would help.", ["Lin Zhengyue'e"]),  # Mandarin romanisation
        ("Lín Zhèng Yuè'é said so.", ["Lín Zhèng Yuè'é"]),  # with tone marks
        ("LIN ZHENGYUEE said so.", ["LIN ZHENGYUEE"]),
        ("Zhengyue'e Lin said so.", ["Zhengyue'e Lin"]),  # Western order
        ("Chief Executive Carrie Lam said so.", ["Carrie Lam"]),  # another full name sharing "Lam"
        ("Carrie Lam said so, and Lam Cheng Yuet-ngor agreed.", []),  # glossary form present: an alias
        ("Lam said the measures would help.", []),  # the surname alone is part of the rendering
        ("Hong Kong Chief Executive Lam spoke.", []),
        ("Berlin Zheng Yue'e visited.", []),  # "lin zheng yue e" inside "Berlin ...": not a whole name
    ],
)
def test_a_person_keeps_the_glossary_rendering(english: str, flagged: list[str]) -> None:
    assert [f.text for f in name_flags(english, [LAM])] == flagged


def test_a_name_flag_names_the_term_and_the_rendering() -> None:
    (flag,) = name_flags("Lin Zhengyue'e spoke.", [LAM_TRAD])
    assert flag.suggestions == ("Lam Cheng Yuet-ngor",)
    assert flag.message == '"Lin Zhengyue\'e" renders 林鄭月娥 differently from "Lam Cheng Yuet-ngor" in the glossary'
    assert flag.sentence == "Lin Zhengyue'e spoke."


def test_organisations_and_places_are_checked_by_romanisation() -> None:
    glossary = [
        ("香港金融管理局", "Hong Kong Monetary Authority", "organisation"),
        ("阿里巴巴", "Alibaba", "organisation"),
    ]
    assert name_flags("The Hong Kong Monetary Authority and Alibaba agreed.", glossary) == []
    assert [f.text for f in name_flags("The Xianggang Jinrong Guanliju agreed.", glossary)] == [
        "Xianggang Jinrong Guanliju"
    ]
    # "Alibaba" is the romanisation itself: nothing to tell apart.
    assert name_flags("A-li-ba-ba and Alibaba agreed.", glossary) == []


def test_without_a_pinyin_lookup_only_the_shared_word_rule_applies() -> None:
    flags = flags_of("name", check_article("", {"summary": "Lin Zhengyue'e and Carrie Lam spoke."}, [LAM]))
    assert [f.text for f in flags] == ["Carrie Lam"]


def test_a_failing_pinyin_lookup_does_not_stop_the_check() -> None:
    def broken(term: str) -> str:
        raise KeyError(term)

    flags = check_article("", {"summary": "Lin Zhengyue'e spoke."}, [LAM], pinyin_of=broken)
    assert flags == []


def test_glossary_renderings_of_other_entries_are_not_flagged() -> None:
    glossary = [LAM, ("林健锋", "Lam Kin-fung", "person")]
    assert name_flags("Lam Kin-fung spoke; Lam Cheng Yuet-ngor listened.", glossary) == []


def test_run_level_names_are_consistent_across_articles() -> None:
    run_glossary = [LAM_TRAD, ("陳茂波", "Paul Chan", "person")]
    articles = [
        ArticleProse("a1", {"summary": "Lam Cheng Yuet-ngor and Paul Chan spoke."}, [LAM_TRAD]),
        ArticleProse(
            "a2",
            {"summary": "Carrie Lam spoke.", "key_points": ["Chen Maobo agreed."]},
            [("林鄭月娥", "Carrie Lam", "person")],
        ),  # fmt: skip
        ArticleProse("a3", {"summary": "Paul Chan agreed."}),
    ]
    result = check_run_names(articles, run_glossary, pinyin_of=pinyin_of)
    assert list(result) == ["a2"]
    assert [(f.field, f.text, f.suggestions) for f in result["a2"]] == [
        ("summary", "Carrie Lam", ("Lam Cheng Yuet-ngor",)),
        ("key_points[0]", "Chen Maobo", ("Paul Chan",)),
    ]
    assert "used in a1" in result["a2"][0].message


# --- a realistic article: no false alarms -------------------------------------------------------

SOURCE = (
    "香港特區政府昨日（7月3日）宣布推出第四輪防疫抗疫基金措施，涉及金額約300億港元。"
    "財政司司長陳茂波表示，早前3輪措施已動用200億港元，合共惠及逾3,853萬人次。\n"
    "他指出，本港第二季本地生產總值按年下跌9%，失業率升至6.2%，為15年來最高。"
    "零售業總銷貨價值首五個月下跌33.3%，約三成食肆表示難以維持。\n"
    "新一輪措施包括向合資格僱主發放工資補貼，每名僱員每月最多9,000元，為期六個月。"
    "政府亦會向全港約20萬名自僱人士一次過發放1萬元。\n"
    "陳茂波又說，2020至21年度財政赤字預計達3,000億元，相當於本地生產總值約11%。"
    "他預料，經濟要到2021年下半年才會復甦。\n"
    "行政長官林鄭月娥則表示，政府已採購兩批共800萬個口罩，並會在12月前完成第二階段派發。"
)

SUMMARY = (
    "On July 3 the Hong Kong government announced a fourth round of measures under its Anti-epidemic Fund, "
    "worth about HK$30 billion. Financial Secretary Paul Chan said the previous three rounds had used "
    "HK$20 billion and benefited more than 38.53 million people. Second-quarter GDP fell 9% year on year and "
    "unemployment rose to 6.2%, the highest in 15 years. Retail sales fell 33.3% in the first five months, "
    "and some 30% of restaurants said they were struggling. The new round includes a wage subsidy of up to "
    "HK$9,000 per employee per month for six months and a one-off payment of HK$10,000 to about 200,000 "
    "self-employed people. Chan expects a deficit of HK$300 billion for 2020-21, about 11% of GDP, and a "
    "recovery only in the second half of 2021. Chief Executive Carrie Lam Cheng Yuet-ngor said the "
    "government had bought 8 million masks in two batches and would finish the second phase of "
    'distribution before December. Officials called the fund ("防疫抗疫基金") one of their main tools.'
)
FIELDS: dict[str, str | list[str]] = {
    "title": "Hong Kong unveils fourth round of anti-epidemic relief worth about HK$30 billion",
    "summary": SUMMARY,
    "key_points": [
        "Fourth round worth about HK$30 billion; the first three used HK$20 billion.",
        "Unemployment at 6.2%, a 15-year high; GDP down 9% in the second quarter.",
        "Wage subsidies of up to HK$9,000 a month for 6 months.",
        "One of the measures: HK$10,000 for some 200,000 self-employed people.",
        "Deficit of HK$300 billion expected, around 11% of GDP.",
    ],
}
GLOSSARY = [
    LAM_TRAD,
    ("陳茂波", "Paul Chan", "person"),
    ("防疫抗疫基金", "Anti-epidemic Fund", "organisation"),
    ("財政司司長", "Financial Secretary", "term"),
]


def test_a_faithful_summary_raises_no_flag() -> None:
    assert check_article(SOURCE, FIELDS, GLOSSARY, pinyin_of=pinyin_of) == []


def test_the_same_summary_with_three_slips_raises_three_flags() -> None:
    fields = dict(FIELDS)
    fields["summary"] = (
        SUMMARY.replace("HK$20 billion", "HK$200 billion")
        .replace("Carrie Lam Cheng Yuet-ngor", "Lin Zhengyue'e")
        .replace("6.2%, the highest", "6.2%, the 陈茂波 highest")
    )
    flags = check_article(SOURCE, fields, GLOSSARY, pinyin_of=pinyin_of)
    assert [(f.kind, f.text) for f in flags] == [
        ("number", "HK$200 billion"),
        ("untranslated", "陈茂波"),
        ("name", "Lin Zhengyue'e"),
    ]
    assert flags[0].suggestions[0] == "200億港元 = HK$20 billion"


# --- repair request and rendering ------------------------------------------------------------------


def test_the_repair_request_names_every_problem_once() -> None:
    flags = check_article(
        "早前3轮措施动用200亿港元。",
        {"summary": "Lin郑月娥 said 200 billion was used.", "key_points": ["Lin Zhengyue'e: 200 billion."]},
        [LAM],
        pinyin_of=pinyin_of,
    )
    text = repair_instructions(flags)
    lines = text.splitlines()
    assert lines[0].startswith("Your previous answer has problems.")
    assert lines[1:] == [
        '1. summary: "Lin郑月娥" is not translated; write "Lam Cheng Yuet-ngor" instead.',
        '2. summary: "200 billion" does not match any figure in the source; the source has '
        "200亿港元 = HK$20 billion. Use the source's figure.",
        '3. key_points[0]: "Lin Zhengyue\'e" renders 林郑月娥 differently from "Lam Cheng Yuet-ngor" in the '
        'glossary; write "Lam Cheng Yuet-ngor" instead of "Lin Zhengyue\'e".',
        '4. key_points[0]: "200 billion" does not match any figure in the source; the source has '
        "200亿港元 = HK$20 billion. Use the source's figure.",
    ]
    assert repair_instructions([]) == ""


def test_mark_unverified_marks_each_flagged_fragment_in_its_sentence() -> None:
    summary = "Rates rose 5%. Then 7% more. Then 7% again."
    flags = check_article("利率上升5%。", {"summary": summary})
    assert mark_unverified(summary, flags, template="**{text}**[?]") == (
        "Rates rose 5%. Then **7%**[?] more. Then **7%**[?] again."
    )


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("The U.S. economy grew 2.5%. Mr. Chan agreed.", ["The U.S. economy grew 2.5%.", "Mr. Chan agreed."]),
        ('He said "no." Then he left! Why?', ['He said "no."', "Then he left!", "Why?"]),
        ("No full stop at the end", ["No full stop at the end"]),
    ],
)
def test_sentences_are_split_without_breaking_abbreviations(text: str, sentences: list[str]) -> None:
    assert [text[s:e].strip() for s, e in sentence_spans(text)] == sentences


def test_malformed_glossary_items_are_ignored() -> None:
    glossary: list[Any] = [("only-two", "parts"), ("", "Empty", "person"), LAM]
    flags = check_article("", {"summary": "Lin郑月娥 spoke."}, glossary)
    assert [f.suggestions for f in flags] == [("Lam Cheng Yuet-ngor",)]


def test_a_name_every_article_uses_names_five_of_them_then_others() -> None:
    users = [ArticleProse(f"a{n}", {"summary": "Lam Cheng Yuet-ngor spoke."}, [LAM_TRAD]) for n in range(9)]
    odd = ArticleProse("z", {"summary": "Carrie Lam spoke."}, [("林鄭月娥", "Carrie Lam", "person")])
    result = check_run_names([*users, odd], [LAM_TRAD], pinyin_of=pinyin_of)
    (flag,) = result["z"]
    assert flag.message.endswith("used in a0, a1, a2, a3, a4, others")
    few = check_run_names([*users[:2], odd], [LAM_TRAD], pinyin_of=pinyin_of)
    assert few["z"][0].message.endswith("used in a0, a1")
    five = check_run_names([*users[:5], odd], [LAM_TRAD], pinyin_of=pinyin_of)
    assert five["z"][0].message.endswith("used in a0, a1, a2, a3, a4")  # all of them: no "others"
    six = check_run_names([*users[:6], odd], [LAM_TRAD], pinyin_of=pinyin_of)
    assert six["z"][0].message.endswith("used in a0, a1, a2, a3, a4, others")
