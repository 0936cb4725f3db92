"""Offline triage on the seeds: terms as written, dictionary English only, verbatim summaries."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opencc import OpenCC

from pipeline.dictionary import Dictionary, load_dictionary
from pipeline.offline.keywords import Token, merge_sticky
from pipeline.offline.triage import (
    OFFLINE_FLAG,
    headline,
    key_point,
    split_sentences,
    summarize_offline,
)
from pipeline.records import ArticleResult, Document, GlossaryEntry

SEEDS = sorted((Path(__file__).parent.parent / "seeds").glob("*.txt"))
_T2S = OpenCC("t2s")
_CJK = re.compile(r"[\u3400-\u9fff]")


def chinese_doc(text: str, doc_id: str = "d1") -> Document:
    simplified = _T2S.convert(text)
    script = "simplified" if simplified == text else "traditional"
    return Document(doc_id, f"{doc_id}.txt", text, "zh", script, simplified)


def seed_doc(path: Path) -> Document:
    # Minimal cleanup in place of ingest: drop image stubs, keep everything else as written.
    text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() != "![]()")
    return chinese_doc(text, path.stem)


@pytest.fixture(scope="module")
def cedict() -> Dictionary:
    return load_dictionary()


@pytest.fixture(scope="module")
def seeds(cedict: Dictionary) -> dict[str, tuple[Document, ArticleResult]]:
    docs = [seed_doc(p) for p in SEEDS]
    return {d.id: (d, summarize_offline(d, cedict)) for d in docs}


def dictionary_glosses(d: Dictionary, term: str) -> list[str]:
    """Every English gloss CC-CEDICT has for a term, including via variant/abbr. references."""
    senses = d.senses(term)
    senses += [t for s in senses for ref in s.see for t in d.senses(ref)]
    return [g for s in senses for g in s.english]


def summary_sentences(result: ArticleResult) -> list[str]:
    return [result.summary[a:b] for a, b in split_sentences(result.summary)]


def test_seeds_are_present() -> None:
    assert len(SEEDS) == 5


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem[:3])
def test_offline_result_is_labelled_and_model_free(path: Path, seeds: dict) -> None:
    doc, result = seeds[path.stem]
    assert result.mode == "offline"
    assert result.model is None and result.prompt is None
    assert (result.usage.requests, result.usage.prompt_tokens, result.usage.completion_tokens) == (
        0,
        0,
        0,
    )
    assert OFFLINE_FLAG in result.flags
    assert result.id == doc.id and result.language == "zh"
    assert result.title and result.title in doc.text
    json.dumps(result.to_json(), ensure_ascii=False)  # the same serialisable schema as the model path


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem[:3])
def test_glossary_terms_are_verbatim_with_dictionary_english_only(path: Path, seeds: dict, cedict: Dictionary) -> None:
    doc, result = seeds[path.stem]
    assert 5 <= len(result.glossary) <= 15
    assert len({e.source_simplified for e in result.glossary}) == len(result.glossary)
    for entry in result.glossary:
        assert entry.source in doc.text, entry
        assert entry.kind in ("person", "organisation", "product", "place", "term")
        if _CJK.search(entry.source):
            assert entry.source_simplified == _T2S.convert(entry.source)
            assert entry.pinyin, entry
            if entry.target:
                # Never invented: the rendering is (the start of) one of the term's CEDICT glosses.
                glosses = dictionary_glosses(cedict, entry.source_simplified)
                assert any(g.startswith(entry.target) for g in glosses), (entry, glosses)
            else:
                assert cedict.english(entry.source_simplified) == ""
        else:
            assert entry.target == entry.source == entry.source_simplified  # DeepSeek is DeepSeek
            assert entry.pinyin == ""


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem[:3])
def test_summary_is_central_sentences_verbatim_in_article_order(path: Path, seeds: dict) -> None:
    doc, result = seeds[path.stem]
    assert 0 < len(result.summary) <= 300
    position = 0
    for sentence in summary_sentences(result):
        found = doc.text.find(sentence, position)
        assert found >= position, sentence
        position = found + len(sentence)
    assert result.title not in result.summary


@pytest.mark.parametrize(
    ("seed", "term", "target"),
    [
        ("000", "通義千問", ""),  # no CC-CEDICT entry: blank, never made up
        ("000", "硅谷", "Silicon Valley"),
        ("000", "黃仁勳", ""),
        ("003", "千问", ""),
        ("004", "DeepSeek", "DeepSeek"),
    ],
)
def test_known_keywords(seed: str, term: str, target: str, seeds: dict) -> None:
    (result,) = [r for key, (_, r) in seeds.items() if key.startswith(seed)]
    entries = {e.source: e for e in result.glossary}
    assert term in entries, sorted(entries)
    assert entries[term].target == target


def test_known_names_are_merged_and_kinded(seeds: dict) -> None:
    (result,) = [r for key, (_, r) in seeds.items() if key.startswith("000")]
    by_source = {e.source: e for e in result.glossary}
    assert by_source["通義千問"].pinyin == "tōng yì qiān wèn"
    assert by_source["黃仁勳"].kind == "person"
    assert by_source["硅谷"].kind == "place"
    assert "通義" not in by_source and "千問" not in by_source


def test_key_points_name_the_top_terms(seeds: dict) -> None:
    for _, result in seeds.values():
        assert 1 <= len(result.key_points) <= 5
        for point, entry in zip(result.key_points, result.glossary, strict=False):
            assert point.startswith(entry.source)


def test_mixed_script_terms_keep_the_commonest_written_form(cedict: Dictionary) -> None:
    text = "通義千問登場。\n阿里巴巴發佈通義千問,通義千問很受歡迎。另一家媒體寫作通义千问,稱通義千問開源。"
    doc = chinese_doc(text)
    result = summarize_offline(doc, cedict)
    entries = {e.source_simplified: e for e in result.glossary}
    assert entries["通义千问"].source == "通義千問"
    assert all(e.source in text for e in result.glossary)


def test_unaligned_simplified_text_still_yields_verbatim_terms(cedict: Dictionary) -> None:
    text = "英偉達與阿里巴巴。\n英偉達和阿里巴巴在硅谷合作開發人工智能芯片,硅谷的公司關注英偉達。"
    doc = chinese_doc(text)
    doc = Document(doc.id, doc.source, doc.text, "zh", "traditional", doc.simplified + "。")
    result = summarize_offline(doc, cedict)
    assert result.glossary
    assert all(e.source in text for e in result.glossary)
    assert {"英偉達", "硅谷"} <= {e.source for e in result.glossary}


def test_japanese_gets_lead_sentences_and_no_glossary() -> None:
    text = (
        "中国のAIが急成長\n"
        "中国の人工知能モデルが世界で注目を集めている。アリババの通義千問は多くの開発者に使われている。"
        "米国の企業も対応を急いでいる。"
    )
    doc = Document("ja1", "ja1.txt", text, "ja", None, text)
    result = summarize_offline(doc, max_summary_chars=60)
    assert result.glossary == []
    assert "offline:no_segmenter:ja" in result.flags and OFFLINE_FLAG in result.flags
    assert result.title == "中国のAIが急成長"
    lead = "中国の人工知能モデルが世界で注目を集めている。アリババの通義千問は多くの開発者に使われている。"
    assert result.summary == lead


def test_english_gets_lead_sentences() -> None:
    text = "Chips and models\nChina's open models are spreading fast. Silicon Valley has noticed the trend. Short.\n"
    doc = Document("en1", "en1.txt", text, "en", None, text)
    result = summarize_offline(doc, max_summary_chars=80)
    assert result.glossary == [] and result.key_points == []
    assert result.title == "Chips and models"
    assert result.summary == "China's open models are spreading fast. Silicon Valley has noticed the trend."


def test_summary_cap_cuts_an_overlong_best_sentence(cedict: Dictionary) -> None:
    text = "標題\n" + "英偉達在硅谷" * 20 + "。"
    result = summarize_offline(chinese_doc(text), cedict, max_summary_chars=30)
    assert len(result.summary) == 30 and result.summary.endswith("…")
    assert result.summary[:-1] in text


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("他說:“好。”然後走了。", ["他說:“好。”", "然後走了。"]),
        ("真的嗎?是的!", ["真的嗎?", "是的!"]),
        ("GPT-4.5 is out. Z.ai too.\n第二行", ["GPT-4.5 is out.", "Z.ai too.", "第二行"]),
        ("  標題  \n\n正文。", ["標題", "正文。"]),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert [text[a:b] for a, b in split_sentences(text)] == sentences


@given(st.text(alphabet="中文AI .。!?”\n 」", max_size=60))
def test_split_sentences_covers_the_text_in_order(text: str) -> None:
    spans = split_sentences(text)
    assert all(a < b for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))
    covered = "".join(text[a:b] for a, b in spans)
    # Nothing but whitespace is lost, and no sentence starts or ends with it.
    assert "".join(covered.split()) == "".join(text.split())
    assert all(text[a:b] == text[a:b].strip() for a, b in spans)


def test_headline_skips_page_chrome_in_chinese_articles() -> None:
    assert headline("Skip to Content\n\n美媒:中國AI崛起\n正文。", "zh") == "美媒:中國AI崛起"
    assert headline("Skip to Content\nBody.", "en") == "Skip to Content"


def tokens(*pairs: str) -> list[Token]:
    out, offset = [], 0
    for pair in pairs:
        word, flag = pair.split("/")
        out.append(Token(word, flag, offset))
        offset += len(word)
    return out


def test_merge_sticky_rejoins_a_cut_up_name_but_not_phrases() -> None:
    run = ["通义/n", "千/m", "问/n"]
    merged = merge_sticky(tokens("参观/v", *run, "。/x", "开源/n", *run, "模型/n", "。/x", "一/m", "家/q", "公司/n"))
    assert [t.word for t in merged].count("通义千问") == 2
    assert "千" not in [t.word for t in merged]
    # A one-off pair, or a pair always preceded by the same word, stays apart.
    once = merge_sticky(tokens("通义/n", "千/m", "问/n", "。/x"))
    assert [t.word for t in once] == ["通义", "千", "问", "。"]


def test_merge_sticky_uses_words_jieba_found_elsewhere() -> None:
    merged = merge_sticky(tokens("千问/n", "APP/eng", "，/x", "千/m", "问/v", "模型/n"))
    assert [t.word for t in merged] == ["千问", "APP", "，", "千问", "模型"]
    assert merged[3].start == 6  # offsets still point into the text


def test_key_point_format() -> None:
    assert (
        key_point(GlossaryEntry("硅谷", "硅谷", "Silicon Valley", "place", "Guī gǔ"), 3)
        == "硅谷 — Silicon Valley (3 mentions)"
    )
    assert key_point(GlossaryEntry("千問", "千问", "", "product", "qiān wèn"), 1) == (
        "千問 — qiān wèn (no dictionary entry) (1 mention)"
    )
    assert key_point(GlossaryEntry("DeepSeek", "DeepSeek", "DeepSeek", "product"), 2) == "DeepSeek (2 mentions)"


def test_five_seeds_run_in_a_few_seconds(cedict: Dictionary) -> None:
    docs = [seed_doc(p) for p in SEEDS]
    summarize_offline(docs[0], cedict)  # jieba's one-off initialisation is not what we measure
    started = time.perf_counter()
    for doc in docs:
        summarize_offline(doc, cedict)
    assert time.perf_counter() - started < 10.0


@pytest.mark.parametrize(
    "text",
    [
        "東京の研究所は新しい人工知能モデルを発表した。開発者によると、性能は大幅に向上したという。",
        "中国开源模型的下载量已经超过美国。阿里巴巴的通义千问衍生模型超过十万个。",
    ],
)
def test_one_paragraph_article_gets_its_first_sentence_as_title_and_a_summary(text: str) -> None:
    from pipeline.ingest.documents import ingest
    from pipeline.offline.triage import summarize_offline

    (doc,) = ingest(text.encode(), "-")
    result = summarize_offline(doc, load_dictionary())
    first_sentence = text.split("。")[0] + "。"
    assert result.title == first_sentence
    assert result.summary.startswith(first_sentence) and len(result.summary) > len(first_sentence)
