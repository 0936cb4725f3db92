"""Glossary rules: terms must occur in the source, scripts merge, one rendering per run."""

from __future__ import annotations

import json

import pytest

from pipeline.glossary import enrich_with_dictionary, harmonise_run, merge_entries, verify_terms
from pipeline.records import ArticleResult, Document, GlossaryEntry
from pipeline.results import ResultStore

# A tiny Traditional→Simplified table keeps these tests independent of OpenCC.
_T2S = str.maketrans({"義": "义", "問": "问", "偉": "伟", "達": "达", "黃": "黄", "勳": "勋"})


def simplify(text: str) -> str:
    return text.translate(_T2S)


def doc(text: str, language: str = "zh") -> Document:
    return Document("d1", "d1.txt", text, language, "traditional", simplify(text))


TRAD = "阿里巴巴的通義千問和英偉達的黃仁勳。"


def test_terms_absent_from_the_article_are_dropped_and_counted() -> None:
    kept, dropped = verify_terms(
        [
            {"source": "阿里巴巴", "target": "Alibaba", "kind": "organisation"},
            {"source": "字节跳动", "target": "ByteDance", "kind": "organisation"},
            {"source": "Gemini", "target": "Gemini", "kind": "product"},
        ],
        doc(TRAD),
        simplify,
    )
    assert [e.source for e in kept] == ["阿里巴巴"]
    assert dropped == 2


def test_a_term_given_in_the_other_script_is_recovered_as_written() -> None:
    kept, dropped = verify_terms(
        [{"source": "通义千问", "target": "Tongyi Qianwen", "kind": "product"}], doc(TRAD), simplify
    )
    assert dropped == 0
    assert kept[0].source == "通義千問"  # exactly as the article writes it
    assert kept[0].source_simplified == "通义千问"


def test_empty_target_or_unknown_kind_is_handled() -> None:
    kept, dropped = verify_terms(
        [
            {"source": "英偉達", "target": "  ", "kind": "organisation"},
            {"source": "黃仁勳", "target": "Jensen Huang", "kind": "ceo"},
        ],
        doc(TRAD),
        simplify,
    )
    assert dropped == 1
    assert kept[0].kind == "term"


def entry(source: str, target: str, kind: str = "product") -> GlossaryEntry:
    return GlossaryEntry(source, simplify(source), target, kind)


def test_merge_joins_scripts_and_votes_on_the_rendering() -> None:
    merged, conflicts = merge_entries(
        [entry("通義千問", "Tongyi Qianwen"), entry("通义千问", "Qwen"), entry("通義千問", "Tongyi Qianwen")]
    )
    assert len(merged) == 1
    assert merged[0].target == "Tongyi Qianwen"
    assert merged[0].source == "通義千問"
    assert conflicts[0].candidates == {"qwen": 1, "tongyi qianwen": 2}


def test_tie_breaks_are_deterministic_whatever_the_order() -> None:
    a = merge_entries([entry("英偉達", "NVIDIA"), entry("英偉達", "Nvidia Corp")])[0][0].target
    b = merge_entries([entry("英偉達", "Nvidia Corp"), entry("英偉達", "NVIDIA")])[0][0].target
    assert a == b == "NVIDIA"


def result(rid: str, entries: list[GlossaryEntry]) -> ArticleResult:
    return ArticleResult(rid, f"{rid}.txt", "model", "zh", "traditional", "t", "s", ["p"], entries)


def test_harmonise_gives_one_rendering_across_articles() -> None:
    r1 = result("a", [entry("通義千問", "Tongyi Qianwen")])
    r2 = result("b", [entry("通义千问", "Qwen")])
    r3 = result("c", [entry("通义千问", "Tongyi Qianwen")])
    harmonised, terms, conflicts = harmonise_run([r1, r2, r3])
    assert {e.target for r in harmonised for e in r.glossary} == {"Tongyi Qianwen"}
    assert r2.glossary[0].target == "Qwen"  # the records passed in are left as they were
    assert len(terms) == 1
    assert terms[0].variants == ["通义千问", "通義千問"]
    assert terms[0].articles == ["a", "b", "c"]
    assert len(conflicts) == 1


def test_offline_blank_renderings_do_not_outvote_a_model_rendering() -> None:
    r1 = result("a", [entry("英偉達", "")])
    r2 = result("b", [entry("英偉達", "")])
    r3 = result("c", [entry("英偉達", "Nvidia")])
    harmonised, _, _ = harmonise_run([r1, r2, r3])
    assert harmonised[0].glossary[0].target == "Nvidia"


class FakeLexicon:
    def pinyin(self, term: str) -> str:
        return {"人工智能": "rén gōng zhì néng"}.get(term, "")

    def disagrees(self, term: str, english: str) -> bool:
        return term == "人工智能" and "intelligence" not in english


@pytest.mark.parametrize(
    ("kind", "target", "warned"),
    [("term", "banana", True), ("term", "artificial intelligence", False), ("person", "banana", False)],
)
def test_dictionary_warnings_spare_names(kind: str, target: str, warned: bool) -> None:
    e = GlossaryEntry("人工智能", "人工智能", target, kind)
    (e,) = enrich_with_dictionary([e], FakeLexicon())
    assert e.pinyin == "rén gōng zhì néng"
    assert ("disagrees_with_cedict" in e.warnings) is warned


def test_briefing_request_of_a_huge_run_stays_within_its_budget() -> None:
    from pipeline.model.briefing import _BRIEFING_BUDGET_TOKENS, _briefing_items

    results = [
        ArticleResult(f"a{n:04d}", "s", "model", "zh", "simplified", f"Title number {n} about chips", "S" * 400, [], [])
        for n in range(3000)
    ]
    items = _briefing_items(results, len)  # count characters: a stricter counter than tokens
    assert 0 < len(items) < len(results)
    assert set(items[0]) == {"id", "title"}
    assert sum(len(json.dumps(item, ensure_ascii=False)) + 2 for item in items) <= _BRIEFING_BUDGET_TOKENS
    few = _briefing_items(results[:3], len)
    assert [set(item) for item in few] == [{"id", "title", "summary"}] * 3


def test_a_huge_run_s_briefing_never_counts_more_than_the_byte_bound() -> None:
    from pipeline.model.briefing import _BRIEFING_BUDGET_TOKENS, _MAX_BYTES_PER_TOKEN, _briefing_items

    results = ResultStore(
        (
            ArticleResult(f"a{n:05d}", "s", "model", "zh", "simplified", f"Title {n} about chips", "S" * 400, [], [])
            for n in range(5000)
        ),
        spill_after=100,
    )
    counted: list[int] = []

    def count(text: str) -> int:
        counted.append(len(text.encode("utf-8")))
        return len(text)

    items = _briefing_items(results, count)
    assert 0 < len(items) < 5000 and set(items[0]) == {"id", "title"}
    assert max(counted) <= _BRIEFING_BUDGET_TOKENS * _MAX_BYTES_PER_TOKEN  # never the whole run's text at once
    assert len(counted) <= len(items) + 1  # one count per title kept, and the one that overflowed


def _story(doc_id: str, title: str, terms: list[tuple[str, str]]) -> ArticleResult:
    glossary = [GlossaryEntry(source, source, target, "term") for source, target in terms]
    return ArticleResult(doc_id, f"{doc_id}.txt", "model", "zh", "simplified", title, "S.", [], glossary)


@pytest.mark.parametrize("spill_after", [100, 0])
def test_articles_sharing_most_terms_are_one_story(spill_after: int) -> None:
    from pipeline.grouping import group_by_shared_terms

    chips = [("芯片", "chips"), ("出口", "export"), ("管制", "controls"), ("英伟达", "Nvidia")]
    results = ResultStore(
        [
            _story("a", "Chips one", chips),
            _story("b", "Lone story", [("火箭", "rocket"), ("发射", "launch"), ("卫星", "satellite")]),
            _story("c", "Chips two", [*chips[:3], ("美国", "United States")]),
            _story("d", "Too few terms", chips[:2]),
        ],
        spill_after=spill_after,
    )
    groups = group_by_shared_terms(results)
    # b and d share no story: they are in no group (the briefing gives each its own section)
    assert [(g.label, g.article_ids) for g in groups] == [("Related coverage: chips, controls, export", ["a", "c"])]


def test_the_model_s_groups_keep_each_known_article_once() -> None:
    from pipeline.grouping import clean_groups
    from pipeline.records import BriefingGroup

    known = {"a", "b", "c"}
    groups = [BriefingGroup("One", ["c", "x", "c", "a"]), BriefingGroup("Two", ["a", "y"]), BriefingGroup("T", ["b"])]
    assert [(g.label, g.article_ids) for g in clean_groups(groups, known)] == [("One", ["c", "a"]), ("T", ["b"])]


@pytest.mark.parametrize("spill_after", [100, 0])
def test_the_briefing_gives_groups_first_then_each_ungrouped_article_once_in_id_order(spill_after: int) -> None:
    from pipeline.output.render import briefing_markdown
    from pipeline.records import BriefingGroup

    results = ResultStore([_story(i, f"Title {i}", []) for i in ("d", "a", "c", "b")], spill_after=spill_after)
    text = "".join(briefing_markdown("O.", [BriefingGroup("Story", ["c", "a"])], results, [], "model"))
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        "# Briefing",
        "## Overview",
        "## Story",
        "### Title c",
        "### Title a",
        "## Title b",
        "## Title d",
        "## Glossary",
    ]


def test_a_re_run_builds_the_same_briefing_items_without_counting_tokens() -> None:
    from pipeline.model.briefing import _remembered_items

    class Memo(dict):  # type: ignore[type-arg]
        def put(self, key: str, value: dict) -> None:  # type: ignore[type-arg]
            self[key] = value

    results = [
        ArticleResult(f"a{n:04d}", "s", "model", "zh", "simplified", f"Title number {n} about chips", "S" * 400, [], [])
        for n in range(3000)
    ]
    memo = Memo()
    first = _remembered_items(results, len, memo)
    assert 0 < len(first) < 3000

    def no_count(text: str) -> int:
        raise AssertionError("counted on a re-run")

    assert _remembered_items(results, no_count, memo) == first
    changed = [*results[:-1], ArticleResult("a2999", "s", "model", "zh", "simplified", "New title", "S.", [], [])]
    assert _remembered_items(changed, len, memo) == first  # same prefix fits; counted afresh (a new key)
    assert len(memo) == 2
