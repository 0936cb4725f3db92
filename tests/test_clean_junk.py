"""Junk classes the seeds lack, on pages of our own (tests/pages_junk): removed by their signals, story intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ingest.documents import ingest

PAGES = Path(__file__).resolve().parent / "pages_junk"

# page -> the removal kinds its junk lines must be counted under
KINDS = {
    "keywords_hk": {"spam"},  # comma-separated keyword header above the story
    "keywords_cn": {"spam"},  # labelled keyword and tag lines
    "keywords_tw": {"spam"},  # hashtags
    "more_news_hk": {"related"},  # number line, title twice on one line, time line
    "more_news_cn": {"related"},  # "1. title", title again, time
    "more_news_tw": {"related"},  # number, title twice and time on one line
    "nav_hk": {"navigation", "share"},  # menu bar, then an app prompt
    "nav_cn": {"navigation", "share"},  # menu bar with | and 下载APP, "打开App阅读全文" at the end
    "nav_en": {"navigation", "share"},
    "read_more_tw": {"related"},  # header, headlines and a long blurb
    "read_more_cn": {"related"},  # decorated headers, a long blurb
    "read_more_en": {"related"},
    "read_more_inline": {"related"},  # a read-more line inside the story, which goes on after it
}


def read_page(name: str) -> tuple[str, list[str], list[str]]:
    """The page, its story lines and its junk lines, from the S|/J| markers."""
    lines = (PAGES / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    page = "\n".join(line[2:] for line in lines)
    story = [line[2:] for line in lines if line.startswith("S|")]
    junk = [line[2:] for line in lines if line.startswith("J|")]
    return page, story, junk


def test_every_page_is_listed() -> None:
    assert sorted(path.stem for path in PAGES.glob("*.txt")) == sorted(KINDS)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_junk_goes_and_every_story_line_stays(name: str) -> None:
    page, story, junk = read_page(name)
    assert story and junk
    (doc,) = ingest(page.encode(), f"{name}.txt")
    assert [line for line in doc.text.split("\n") if line] == story
    for line in junk:
        assert line not in doc.text, line
    assert set(doc.removed) == KINDS[name]
    assert sum(doc.removed.values()) == len(junk)


@pytest.mark.parametrize("script", ["traditional", "simplified"])
def test_more_news_list_in_the_middle_of_a_story_is_cut_out(script: str) -> None:
    title, first, second, item, time = {
        "traditional": (
            "颱風逼近 全台嚴陣以待",
            "中央氣象署表示，颱風今晚將逼近東部海面，強度持續增強。",
            "氣象署預計明天清晨發布陸上颱風警報，呼籲民眾做好防颱準備。",
            "股市收盤大漲",
            "2小時前",
        ),
        "simplified": (
            "台风逼近 全省严阵以待",
            "气象台表示，台风今晚将逼近东部海面，强度持续增强。",
            "气象台预计明天清晨发布台风警报，提醒市民做好防御准备。",
            "股市收盘大涨",
            "2小时前",
        ),
    }[script]
    page = "\n".join([title, first, "1", item + item, time, "2", item + "了", item + "了", "昨天", second])
    (doc,) = ingest(page.encode(), "p.txt")
    assert doc.text.split("\n") == [title, first, second]
    assert doc.removed == {"related": 7}


def test_a_relative_time_alone_is_not_a_list() -> None:
    page = "颱風今晚逼近東部海面\n3小時前\n氣象署預計明早發布陸上警報，民眾應做好防颱準備。"
    (doc,) = ingest(page.encode(), "p.txt")
    assert "related" not in doc.removed and "氣象署預計明早發布陸上警報" in doc.text


def test_story_after_a_read_more_block_is_kept_even_when_short() -> None:
    page = "\n".join(
        [
            "立法會通過新法例規管人工智能應用",
            "立法會今日三讀通過新法例，規定企業須披露人工智能決定。",
            "延伸閱讀",
            "歐盟人工智能法案正式生效",
            "美國加州跟進立法",
            "政府表示，新法例明年生效。",
            "業界歡迎。",
        ]
    )
    (doc,) = ingest(page.encode(), "p.txt")
    assert doc.text.endswith(
        "立法會今日三讀通過新法例，規定企業須披露人工智能決定。\n政府表示，新法例明年生效。\n業界歡迎。"
    )
    assert doc.removed == {"related": 3}


def test_a_trailer_stops_at_a_disclaimer_that_opens_the_next_story() -> None:
    story = "北京市近日發布支持人工智能產業發展的若干措施，提出對大模型企業給予算力補貼，並建設一批應用場景。" * 4
    second = "上海市今日宣布成立人工智能專項基金，首期規模一百億元，重點支持基礎模型和芯片企業的研發工作。" * 4
    page = "\n".join(["北京發布新政", story, "延伸閱讀", "上海推出基金", "版權所有，不得轉載", second])
    first_doc, second_doc = ingest(page.encode(), "p.txt")
    assert first_doc.text == "北京發布新政\n" + story
    assert second_doc.text == second
    assert first_doc.removed.get("related", 0) + second_doc.removed.get("related", 0) == 2
