"""CC-CEDICT lookups: tone marks, renderings, composed pinyin and the sense check."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.dictionary import (
    Dictionary,
    content_words,
    load_dictionary,
    numbered_to_marks,
    parse_line,
)

# A few real CC-CEDICT lines, so the rules are tested independently of the shipped file.
LINES = [
    "# CC-CEDICT",
    "穀歌 谷歌 [Gu3 ge1] /variant of 谷歌[Gu3 ge1]/",
    "谷歌 谷歌 [Gu3 ge1] /Google, Internet company and search engine/",
    "阿里巴巴 阿里巴巴 [A1 li3 Ba1 ba1] /Ali Baba, character from The Arabian Nights/",
    "阿里巴巴 阿里巴巴 [A1 li3 ba1 ba1] /Alibaba, PRC e-commerce company/",
    "開源 开源 [kai1 yuan2] /to expand one's financial resources/abbr. for 開放源碼|开放源码[kai1 fang4 yuan2 ma3]/",
    "開放源碼 开放源码 [kai1 fang4 yuan2 ma3] /open source (computing)/",
    "世界 世界 [shi4 jie4] /world/CL:個|个[ge4]/",
    "驢 驴 [lu:2] /donkey/CL:頭|头[tou2]/",
    "號 号 [hao2] /roar/cry/",
    "號 号 [hao4] /ordinal number/day of a month/mark/sign/business establishment/size/",
    "三 三 [san1] /three/",
    "黃 黄 [Huang2] /surname Huang or Hwang/",
    "黃 黄 [huang2] /yellow/pornographic/",
    "英偉達 英伟达 [Ying1 wei3 da2] /NVIDIA, computer graphics card company/",
    "特朗普 特朗普 [Te4 lang3 pu3] /Donald Trump (1946-), American business magnate/",
    "malformed line",
]


@pytest.fixture(scope="module")
def small() -> Dictionary:
    return Dictionary(LINES)


@pytest.fixture(scope="module")
def cedict() -> Dictionary:
    return load_dictionary()


@pytest.mark.parametrize(
    ("numbered", "marked"),
    [
        ("lu:4", "lǜ"),
        ("nu:3 er2", "nǚ ér"),
        ("lu:e4", "lüè"),
        ("lv4", "lǜ"),
        ("xian4", "xiàn"),
        ("er5", "er"),
        ("ma5", "ma"),
        ("Tong1 yi4 Qian1 wen4", "Tōng yì Qiān wèn"),
        ("gou3 shui3 gui4 liu2", "gǒu shuǐ guì liú"),  # ou → o; iu/ui → the last vowel
        ("A1 li3", "Ā lǐ"),
        ("n2", "ń"),
        ("san1 C", "sān C"),  # letters in a headword stay as they are
    ],
)
def test_numbered_pinyin_becomes_tone_marks(numbered: str, marked: str) -> None:
    assert numbered_to_marks(numbered) == marked


_SYLLABLES = st.sampled_from(["zhong", "guo", "lu:", "nu:e", "xiang", "er", "m", "ng", "Ai", "ou"])


@given(st.lists(st.tuples(_SYLLABLES, st.sampled_from("12345")), min_size=1, max_size=6))
def test_every_toned_syllable_loses_its_digit_and_keeps_its_letters(
    syllables: list[tuple[str, str]],
) -> None:
    marked = numbered_to_marks(" ".join(f"{s}{tone}" for s, tone in syllables))
    assert not any(ch.isdigit() for ch in marked)
    for (letters, tone), out in zip(syllables, marked.split(), strict=True):
        plain = unicodedata.normalize("NFD", out)
        marks = [c for c in plain if c in "\u0304\u0301\u030c\u0300"]
        assert len(marks) == (0 if tone == "5" else 1)  # exactly one tone mark, none for tone 5
        base = "".join(c for c in plain if not unicodedata.combining(c))
        assert base == letters.replace("u:", "u")


def test_parse_line_cleans_notes_and_records_references() -> None:
    sense = parse_line(LINES[5])
    assert sense is not None
    assert sense.english == ["to expand one's financial resources"]
    assert sense.see == ["开放源码"]
    assert not sense.is_proper
    world = parse_line("世界 世界 [shi4 jie4] /world (CL:個|个[ge4])/")
    assert world is not None and world.english == ["world"]
    assert parse_line("# comment") is None


def test_lookup_by_either_script(small: Dictionary) -> None:
    assert [s.simplified for s in small.senses("英偉達")] == ["英伟达"]
    assert small.senses("英伟达") == small.senses("英偉達")
    assert small.senses("不存在") == []


def test_english_prefers_real_names_and_cuts_descriptions(small: Dictionary) -> None:
    assert small.english("英偉達") == "NVIDIA"
    assert small.english("阿里巴巴") == "Alibaba"  # the company, not the fictional character
    assert small.english("特朗普") == "Donald Trump"
    assert small.english("黄") == "yellow"  # a bare surname loses to the common word
    assert small.english("世界") == "world"
    assert small.english("驴") == "donkey"


def test_english_follows_variant_and_abbreviation_references(small: Dictionary) -> None:
    assert small.english("穀歌") == "Google"
    assert small.english("开源") == "to expand one's financial resources"
    assert small.english("开源", prefer_noun=True) == "open source"


def test_english_is_empty_without_an_entry(small: Dictionary, cedict: Dictionary) -> None:
    assert small.english("通義千問") == ""
    assert cedict.english("通義千問") == ""
    assert cedict.english("DeepSeek") == ""


def test_pinyin_from_entry_or_composed(small: Dictionary) -> None:
    assert small.pinyin("英偉達") == "Yīng wěi dá"
    assert small.pinyin("三号") == "sān hào"  # the richer common reading of 号, not háo
    assert small.pinyin("黄三") == "huáng sān"  # inside a word 黄 is read as the common word
    assert small.pinyin("三X") == ""
    assert small.pinyin("通义") == ""  # a character without a reading: no guess


def test_is_proper(small: Dictionary) -> None:
    assert small.is_proper("谷歌")
    assert not small.is_proper("世界")
    assert all(s.is_proper for s in small.senses("黄") if s.pinyin == "Huáng")


def test_proper_nouns_in_text(small: Dictionary) -> None:
    assert small.proper_nouns_in("美國英偉達和阿里巴巴", min_len=3) == ["英偉達", "阿里巴巴"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("to Run the Models", {"run", "model"}),
        ("companies' strategies", {"company", "strategy"}),
        ("a boss", {"boss"}),
    ],
)
def test_content_words(text: str, words: set[str]) -> None:
    assert content_words(text) == words


def test_known_entries(cedict: Dictionary) -> None:
    assert "artificial intelligence" in cedict.english("人工智能")
    assert cedict.english("硅谷") == "Silicon Valley"
    assert cedict.pinyin("人工智能") == "rén gōng zhì néng"
    assert cedict.pinyin("女兒") == "nǚ ér"


@pytest.mark.parametrize(
    ("term", "english", "disagrees"),
    [
        ("人工智能", "banana", True),
        ("人工智能", "AI", False),
        ("人工智能", "Artificial Intelligence", False),
        ("模型", "models", False),  # plural folds to the sense "model"
        ("开源", "open-source", False),  # matched through "abbr. for 开放源码"
        ("芯片", "semiconductor", True),
        ("硅谷", "banana", False),  # a name: exempt
        ("英伟达", "Nvidia Corp", False),
        ("通义千问", "Tongyi Qianwen", False),  # no entry: nothing to disagree with
        ("模型", "", False),
    ],
)
def test_disagrees(cedict: Dictionary, term: str, english: str, disagrees: bool) -> None:
    assert cedict.disagrees(term, english) is disagrees


def test_load_is_cached() -> None:
    # Its load time is a benchmark figure (bench/), not a unit-test assertion: timings vary with the machine.
    load_dictionary.cache_clear()
    first = load_dictionary()
    assert load_dictionary() is first
    assert len(first) > 100_000
