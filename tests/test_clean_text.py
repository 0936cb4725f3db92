"""Character classes and sentence ends: one definition (pipeline.text), used by the whole ingest stage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.ingest.chunk import split_text
from pipeline.ingest.documents import ingest
from pipeline.text import (
    CJK_RE,
    FULLWIDTH,
    HAN_RE,
    HAN_SUPPLEMENTARY,
    HANGUL_RE,
    KANA_RE,
    count_han,
    ends_sentence,
    has_sentence_end,
    is_han,
)

INGEST = Path(__file__).resolve().parent.parent / "pipeline" / "ingest"
# The ingest modules of this stage (html.py and html_meta.py belong to the web-page extractor).
STAGE = ["blocks", "chrome", "chunk", "clean", "conversion", "decode", "documents", "inline", "joins", "language"]
STAGE += ["mojibake", "tokens"]


@pytest.mark.parametrize(
    ("char", "han", "kana", "hangul"),
    [
        ("中", True, False, False),
        ("\u3400", True, False, False),  # extension A
        ("\u4db5", True, False, False),
        ("\uf900", True, False, False),  # compatibility ideograph
        ("\u4dc0", False, False, False),  # a hexagram symbol, between extension A and the unified block
        ("\u3007", False, False, False),  # 〇 is a number sign, not an ideograph
        ("あ", False, True, False),
        ("ア", False, True, False),
        ("ー", False, True, False),
        ("ｱ", False, True, False),  # half-width katakana
        ("\u31f0", False, True, False),
        ("・", False, False, False),  # Chinese pages write foreign names with it
        ("한", False, False, True),
        ("\u1100", False, False, True),
        ("ㄱ", False, False, True),
        ("A", False, False, False),
        ("，", False, False, False),
    ],
)
def test_character_classes(char: str, han: bool, kana: bool, hangul: bool) -> None:
    assert is_han(char) is han
    assert count_han(char) == int(han)
    assert bool(KANA_RE.match(char)) is kana
    assert bool(HANGUL_RE.match(char)) is hangul
    assert bool(CJK_RE.match(char)) is (han or kana or hangul)


def test_is_han_is_the_han_class() -> None:
    assert all(is_han(c) == bool(HAN_RE.match(c)) for c in map(chr, range(0x10000)))
    assert not is_han("\U00020000") and re.match(f"[{HAN_SUPPLEMENTARY}]", "\U00020000")


def test_fullwidth_forms() -> None:
    fullwidth = re.compile(f"[{FULLWIDTH}]")
    assert all(fullwidth.match(c) for c in "ＡＺａ０，！？（）ｱ")
    assert not any(fullwidth.match(c) for c in "A,!。中")


@pytest.mark.parametrize(
    ("text", "has_end", "ends"),
    [
        ("中國AI崛起。", True, True),
        ("他說：「很好。」", True, True),
        ("真的嗎？", True, True),
        ("未完…", True, True),
        ("The model works. It is fast", True, False),
        ("The model works.", True, True),
        ("DeepSeek V3.5 and Z.ai", False, False),
        ("首頁 > 科技 > AI", False, False),
        ("a; b", True, False),
    ],
)
def test_sentence_ends(text: str, has_end: bool, ends: bool) -> None:
    assert has_sentence_end(text) is has_end
    assert ends_sentence(text) is ends


def test_the_cleaner_and_the_chunker_agree_on_sentence_ends() -> None:
    # "3.5" ends no sentence for the chunker, so a short line printed twice with only "3.5" in it
    # is a caption for the cleaner too (it used to count any "." as punctuation).
    assert split_text("DeepSeek V3.5 發布。", 100, len) == ["DeepSeek V3.5 發布。"]
    story = "中國開源模型的下載量已經超過美國，成為全球第一。這是一個重要的里程碑。"
    page = "\n".join(
        ["美媒：中國AI模型下載量居首", story, "DeepSeek V3.5 架構示意圖", "DeepSeek V3.5 架構示意圖", story[:25]]
    )
    (doc,) = ingest(page.encode(), "p.txt")
    assert "示意圖" not in doc.text
    assert doc.removed == {"caption": 1, "duplicate": 1}


def test_character_ranges_are_defined_only_in_pipeline_text() -> None:
    ranges = re.compile(r"\\u[0-9a-fA-F]{4}-\\u|<= char <=|\\u(?:4e00|3400|3040|ac00|1100|f900)", re.IGNORECASE)
    for name in STAGE:
        source = (INGEST / f"{name}.py").read_text(encoding="utf-8")
        assert not ranges.search(source), name
