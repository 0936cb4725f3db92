"""Spam goes by its signals (keyword lists, contact and link promotions, repeated promotions), not for no full stop.

Headlines, Markdown headings and unfinished sentences are story text.
"""

from __future__ import annotations

import pytest

from pipeline.ingest.documents import ingest

LEAD = "據報道，中國開源模型的下載量已經超過美國，成為全球第一。這是一個重要的里程碑。"


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("Chinese AI models overtake US rivals in downloads", "top"),
        ("China AI Boom Spooks Silicon Valley", "top"),
        ("# 標題", "top"),
        ("## 市場反應", "middle"),
        ("# 中國 AI 模型 下載量 超過 美國", "top"),
        ("這是重要的里程碑，也是中國AI的勝利，專家表示，未來將更好，值得期待", "bottom"),
        ("The company said the new model is available to all of its users and costs less than before", "bottom"),
    ],
)
def test_lines_without_a_full_stop_are_story_text(line: str, where: str) -> None:
    lines = {"top": [line, LEAD], "middle": [LEAD, line, LEAD[:30] + "。"], "bottom": [LEAD, line]}[where]
    (doc,) = ingest("\n".join(lines).encode(), "p.txt")
    assert line in doc.text.split("\n")
    assert doc.removed == {}


@pytest.mark.parametrize(
    "article",
    [
        [
            "China AI Boom Spooks Silicon Valley",
            "Chinese labs released open models that rival the best American ones",
            "Investors in San Francisco say the cost of training has fallen sharply",
            "Some founders now build on Chinese models first",
        ],
        [
            "千問恐慌席捲硅谷",
            "十一月的硅谷，一場被稱為千問恐慌的情緒正在蔓延，投資人和創業者都在討論中國模型",
            "分析認為，趨勢難以逆轉，美企需要應對，前景仍不明朗，值得關注",
        ],
    ],
    ids=["english", "chinese"],
)
def test_an_article_without_any_full_stop_is_kept_whole(article: list[str]) -> None:
    (doc,) = ingest("\n".join(article).encode(), "p.txt")
    assert doc.text == "\n".join(article)


@pytest.mark.parametrize(
    "spam",
    [
        "AI,人工智能,DeepSeek,大模型,ChatGPT,开源",
        "人工智慧、大模型、輝達、台積電、半導體、晶片",
        "AI | 人工智能 | 大模型 | 芯片 | 开源 | 算力",
        "關鍵詞：人工智能 大模型 DeepSeek",
        "Tags: AI, China, chips",
        "#AI #人工智能 #DeepSeek #大模型",
        "加微信 abc12345 免費領取投資資料",
        "兼職日結，聯繫 13912345678",
        "点击 https://example.cn/x 领取红包",
        "詳情請瀏覽 www.example.com",
        "限時優惠！限時優惠！限時優惠！",
        "點擊領取 點擊領取 點擊領取",
        "立即下载立即下载立即下载",
    ],
)
def test_spam_is_removed_by_its_signal(spam: str) -> None:
    (doc,) = ingest("\n".join([LEAD, spam, LEAD[:20] + "。"]).encode(), "p.txt")
    assert spam not in doc.text
    assert doc.removed == {"spam": 1}
    assert doc.text.startswith(LEAD)


@pytest.mark.parametrize(
    "sentence",
    [
        "雙方在官網www.example.com宣布合作，協議即日生效。",
        "政府推出稅收優惠，詳情見www.gov.hk。",
        "市民如有查詢，可致電1823聯絡政府熱線。",
        "報道指，中國、美國、歐盟、日本、韓國都在加緊立法。",
        "他高喊：「加油！加油！加油！」",
    ],
)
def test_news_sentences_that_look_a_little_like_spam_are_kept(sentence: str) -> None:
    (doc,) = ingest("\n".join([LEAD, sentence]).encode(), "p.txt")
    assert doc.text.split("\n") == [LEAD, sentence]
