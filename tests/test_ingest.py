"""Ingest on the real seed articles: what must be gone, what must survive, for every seed."""

from __future__ import annotations

import codecs
import functools
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.ingest import documents, language
from pipeline.ingest.conversion import convert
from pipeline.ingest.documents import document_id, ingest
from pipeline.ingest.language import detect_language
from pipeline.ingest.mojibake import MOJIBAKE_MARKER, find_garbled

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def seed(prefix: str) -> Path:
    return next(SEEDS.glob(f"{prefix}_*.txt"))


def docs(prefix: str) -> list:
    path = seed(prefix)
    return ingest(path.read_bytes(), str(path))


# (seed, text that must be gone, text that must survive)
SEED_TABLE = [
    (
        "000",
        ["刘程辉风物长宜放眼量", "【文/觀察者網 柳白】", "IC Photo", "未經授權,不得轉載"],
        ["為何連硅谷都倒戈中國AI了", "英偉達首席執行官黃仁勳", "月之暗面(Moonshot AI)", "(Andreessen Horowitz)説。"],
    ),
    (
        "001",
        ["曲乔乔。", "【文/觀察者網 齊倩】", "視覺中國", "阿里巴巴Qwen3模型 社交媒體", "不得轉載"],
        ["美媒關注:中國開源AI將主導世界", "蘇廉節(Su Lian Jye)", "gpt-oss"],
    ),
    (
        "002",
        ["(jìng)", "(chǎng)", "![]()", "特别声明", "Notice: The content above", "悾敲丛谶"],
        [
            "如果把全球AI競賽比作一場豪車",
            "DeepSeek-R1",
            "Hugging Face(全球最大的模型托管平臺)",
            "訓練成本只有29.4萬美元",
        ],
    ),
    ("003", [], ["“千问恐慌”席卷硅谷,谁在颤抖?", "千问Qwen开源模型", "已经是国产AI链质的—场突破。"]),
]


@pytest.mark.parametrize(("prefix", "gone", "kept"), SEED_TABLE, ids=[row[0] for row in SEED_TABLE])
def test_seed_cleaning(prefix: str, gone: list[str], kept: list[str]) -> None:
    (doc,) = docs(prefix)
    for junk in gone:
        assert junk not in doc.text, junk
    for sentence in kept:
        assert sentence in doc.text, sentence
    assert doc.language == "zh"
    assert doc.text == doc.text.strip()


def test_seed_000_keeps_every_paragraph_of_the_story() -> None:
    raw = seed("000").read_text(encoding="utf-8").splitlines()
    story = [line for line in raw[3:-1] if len(line) > 40 and "IC Photo" not in line]
    (doc,) = docs("000")
    assert all(line in doc.text for line in story)
    assert doc.removed == {"byline": 2, "caption": 1, "disclaimer": 1}


def test_seed_002_pinyin_and_images_counted_mojibake_marked_not_guessed() -> None:
    (doc,) = docs("002")
    assert not re.search(r"[(（][a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ]+[)）]", doc.text)
    assert doc.removed["pinyin"] > 100
    assert doc.removed["image"] == 11
    assert doc.removed["disclaimer"] == 2
    markers = [m.start() for m in re.finditer(re.escape(MOJIBAKE_MARKER), doc.text)]
    assert len(markers) >= 5
    assert f"mojibake:{len(markers)}" in doc.flags
    assert "mojibake_at:" + ",".join(map(str, markers)) in doc.flags
    # the lost words are not reconstructed, and the text around each marker is intact
    assert "中國隊因" + MOJIBAKE_MARKER + "零件(芯片)" in doc.text
    assert "?" + "yàn" not in doc.text
    assert doc.script == "mixed"


def test_seed_004_two_stories_with_their_own_ids_and_no_chrome() -> None:
    first, second = docs("004")
    stem = seed("004").stem
    assert (first.id, second.id) == (f"{stem}#1", f"{stem}#2")
    assert first.text.startswith("美媒:大批國際客戶轉用")
    assert first.text.count("美媒:大批國際客戶轉用") == 1
    assert "Ritwik Gupta" in first.text and "長征" not in first.text
    assert second.text.startswith("12月23日10時00分,長征十二號甲")
    assert "路雖遠,行則將至" in second.text and "DeepSeek" not in second.text
    for junk in ("Skip to Content", "博客文章", "毛拍手", "文責自負", "你 或 有 興 趣", "興趣"):
        assert junk not in first.text + second.text, junk
    # repeated captions and repeated paragraphs appear once (or not at all, for captions)
    assert first.text.count("據報,越來越多國際用戶轉用中國的AI模型") == 1
    assert "\n長征十二號甲遙一運載火箭\n" not in second.text
    assert second.removed["related"] == 1 and first.removed["navigation"] == 4
    assert "story:1/2" in first.flags and "story:2/2" in second.flags


def test_scripts_detected_per_seed() -> None:
    assert [d.script for p in ("000", "001", "003") for d in docs(p)] == ["traditional", "traditional", "simplified"]


def test_simplified_normalisation_matches_across_scripts() -> None:
    (doc,) = docs("000")
    assert "通義千問" in doc.text and "通义千问" in doc.simplified
    assert len(doc.simplified) == len(doc.text)
    (simplified_doc,) = docs("003")
    assert simplified_doc.simplified == simplified_doc.text


@pytest.mark.parametrize(
    "encoding",
    ["utf-8-sig", "utf-16", "utf-16-be-bom", "gb18030", "big5", "utf-8-crlf"],
)
def test_encoding_variants_of_a_seed_give_the_same_document(encoding: str) -> None:
    original = seed("004").read_text(encoding="utf-8")
    expected = ingest(original.encode("utf-8"), "x.txt")
    if encoding == "utf-16-be-bom":
        payload = codecs.BOM_UTF16_BE + original.encode("utf-16-be")
    elif encoding == "utf-8-crlf":
        payload = original.replace("\n", "\r\n").encode("utf-8")
    elif encoding == "gb18030":
        payload = original.encode("gb18030")
    elif encoding == "big5":
        payload = original.encode("big5", errors="strict")
    else:
        payload = original.encode(encoding)
    got = ingest(payload, "x.txt")
    assert [d.text for d in got] == [d.text for d in expected]
    assert any(flag.startswith("encoding:") for flag in got[0].flags)


def test_gbk_simplified_seed_is_detected_as_gb18030_not_big5() -> None:
    text = seed("003").read_text(encoding="utf-8")
    (doc,) = ingest(text.encode("gbk"), "x.txt")
    assert "encoding:gb18030" in doc.flags
    assert "千问恐慌" in doc.text


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty file"),
        (b" \n\t\r\n  ", "whitespace only"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, "binary"),
        (b"\x80\xff\x80\xfe" * 40, "cannot decode"),
        ("Skip to Content\n博客文章\n".encode(), "no article text"),
    ],
)
def test_unusable_input_is_one_line_error_naming_the_file(payload: bytes, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        ingest(payload, "folder/bad.txt")
    message = str(caught.value)
    assert message.startswith("folder/bad.txt: ")
    assert reason in message
    assert "\n" not in message


def test_real_parentheticals_survive_pinyin_removal() -> None:
    text = "月之暗面(Moonshot AI)與開源促進會(OSI)今 (3) 日宣布,競(jìng)賽(sài)開始。是的(de)。AI(ài)"
    (doc,) = ingest(text.encode(), "p.txt")
    assert "(Moonshot AI)" in doc.text and "(OSI)" in doc.text and "今 (3) 日" in doc.text
    assert "競賽開始" in doc.text
    assert "(jìng)" not in doc.text and "(sài)" not in doc.text


def test_web_chrome_removed_and_counted() -> None:
    page = "\n".join(
        [
            "AI,人工智能,DeepSeek,大模型,ChatGPT,开源",
            "首頁 > 港澳 > 時政",
            "中國AI模型下載量超過美國",
            "中國AI模型下載量超過美國",
            "據報道，中國開源模型的下載量已經超過美國,,成為全球第一。這是一個重要的里程碑。",
            "分享到：微信 微博 QQ",
            "下載APP，閱讀更多精彩內容",
            "相關新聞",
            "美國芯片禁令升級",
            "美國芯片禁令升級",
            "歐盟人工智能法案生效",
        ]
    )
    (doc,) = ingest(page.encode(), "page.txt")
    assert doc.text == (
        "中國AI模型下載量超過美國\n據報道，中國開源模型的下載量已經超過美國,成為全球第一。這是一個重要的里程碑。"
    )
    assert doc.removed == {
        "breadcrumb": 1,
        "doubled_punctuation": 1,
        "duplicate": 1,
        "related": 4,
        "share": 2,
        "spam": 1,
    }
    assert "removed:spam:1" in doc.flags


def test_html_page_is_reduced_to_its_visible_text() -> None:
    page = (
        "<!DOCTYPE html><html><head><title>新聞</title><script>var x='中國';</script></head><body>"
        "<nav>首頁 新聞 財經</nav><article><h1>香港科技公司發布新模型</h1>"
        "<p>香港一家科技公司今日發布了新的人工智能模型&amp;工具，引起業界關注。</p></article>"
        "<footer>版權所有 © 2025</footer></body></html>"
    )
    (doc,) = ingest(page.encode(), "page.html")
    assert "var x" not in doc.text and "首頁 新聞" not in doc.text and "版權所有" not in doc.text
    assert "香港一家科技公司今日發布了新的人工智能模型&工具" in doc.text
    assert "html" in doc.flags


def test_japanese_is_recognised_by_kana_and_never_converted() -> None:
    text = "東京の研究所は新しい人工知能モデルを発表した。開発者によると、性能は大幅に向上したという。"
    (doc,) = ingest(text.encode(), "ja.txt")
    assert doc.language == "ja"
    assert doc.script is None
    assert doc.simplified == doc.text  # OpenCC would turn 発 or 東 into other forms
    assert not any(flag.startswith("opencc") for flag in doc.flags)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("서울의 인공지능 기업이 새로운 언어 모델을 공개했다. 업계의 관심이 높다.", "ko"),
        ("The company said on Monday that the new model is available to all of its users.", "en"),
        ("中国人工智能企业发布了新的大模型，引起了广泛关注。", "zh"),
        ("12345 67890 !!!", "und"),
    ],
)
def test_language_detection(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_region_picks_the_opencc_configuration() -> None:
    (taiwan,) = ingest("臺灣的軟體公司說,這個程式裡的問題已經修正了。".encode(), "tw.txt")
    (hong_kong,) = ingest("香港公司表示,這個系統裏的問題已經修正,並説明原因。".encode(), "hk.txt")
    assert "opencc:tw2s" in taiwan.flags and "opencc:hk2s" in hong_kong.flags
    assert "说" in hong_kong.simplified and "里" in taiwan.simplified


def test_utf8_read_as_gbk_is_marked() -> None:
    garbled = "我们因为被限制了顶级零件而落后".encode().decode("gbk", errors="replace")
    spans = find_garbled("新闻：" + garbled + "。")
    assert len(spans) == 1 and spans[0].start == 3


def test_ordinary_question_marks_and_rare_words_are_not_mojibake() -> None:
    text = "29萬美元是什么概念?在硅谷,這可能也就是年薪。覬覦已久的坎坷之路,踵事增華。"
    assert find_garbled(text) == []


def test_document_id() -> None:
    assert document_id("-") == "stdin"
    assert document_id("a/b/004_fcb75e84432dc768.txt") == "004_fcb75e84432dc768"


# --- OpenCC: fewer conversions, same output ------------------------------------------------------

_SEED_TEXT = "".join(path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt")))
_opencc_texts = st.lists(
    st.one_of(
        st.integers(0, len(_SEED_TEXT) - 12).map(lambda i: _SEED_TEXT[i : i + 12]),
        st.sampled_from(
            ["干", "了解", "手表", "頭髮", "头发", "乾隆", "後台", "里程碑", "説明", "裏面", "線上", "台灣", "一干二净"]
        ),
    ),
    max_size=20,
).map("".join)


@functools.cache
def library(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


@settings(max_examples=200, deadline=None)
@given(text=_opencc_texts, config=st.sampled_from(["t2s", "s2t", "hk2s", "tw2s"]))
def test_conversion_is_the_opencc_library_s(text: str, config: str) -> None:
    assert convert(text, config) == library(config).convert(text)


def test_a_simplified_article_is_converted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    configs: list[str] = []

    def recording(text: str, config: str) -> str:
        configs.append(config)
        return convert(text, config)

    monkeypatch.setattr(language, "convert", recording)
    monkeypatch.setattr(documents, "convert", recording)
    (doc,) = docs("003")
    assert doc.script == "simplified" and doc.simplified == doc.text
    assert configs == ["t2s"]  # no s2t: with nothing Traditional in it, the script is Simplified
