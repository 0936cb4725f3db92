"""The model path on one article: staged merges, split-on-overflow, untranslated replies rejected."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.ingest.documents import ingest
from pipeline.ingest.language import to_simplified
from pipeline.ingest.mojibake import MOJIBAKE_MARKER
from pipeline.ingest.tokens import count_tokens
from pipeline.model.client import ModelClient
from pipeline.model.summarize import ModelSummarizer, SummaryOptions
from pipeline.records import ArticleResult, Document
from tests.fakeserver import default_responder
from tests.inprocess import InProcessBackend
from tests.responders import INVENTED_TERM, prompt_kind

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def seed_document(prefix: str) -> Document:
    path = next(SEEDS.glob(f"{prefix}_*.txt"))
    return ingest(path.read_bytes(), str(path))[0]


def user_text(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def between(text: str, tag: str) -> str:
    return text.split(f"<{tag}>\n", 1)[1].rsplit(f"\n</{tag}>", 1)[0]


def summarize(server: InProcessBackend, doc: Document, chunk_tokens: int) -> ArticleResult:
    options = SummaryOptions(chunk_tokens, 512, 0.0, MOJIBAKE_MARKER)

    async def run() -> ArticleResult:
        client = ModelClient(server, None, "fake-qwen", concurrency=4)
        return await ModelSummarizer(client, options, count_tokens, to_simplified).summarize(doc)

    return asyncio.run(run())


@pytest.fixture()
def server() -> InProcessBackend:
    return InProcessBackend()


def test_long_article_merges_in_stages_within_the_budget(server: InProcessBackend) -> None:
    doc = seed_document("001")
    budget = 150
    result = summarize(server, doc, budget)
    kinds = [prompt_kind(b) for b in server.bodies()]
    maps, reduces = kinds.count("map"), kinds.count("reduce")
    assert maps > 15
    assert reduces >= 3  # more than one merge level: one request could not hold every part
    for body in server.bodies():
        if prompt_kind(body) == "reduce":
            parts = json.loads(between(user_text(body), "parts"))
            sizes = [count_tokens(json.dumps(part, ensure_ascii=False)) for part in parts]
            # Every merge fits the budget, except a pair: a merge always takes at least two parts.
            assert len(parts) == 2 or sum(sizes) <= budget
    assert result.usage.requests == maps + reduces
    assert 3 <= len(result.key_points) <= 7


def test_reply_cut_at_its_budget_twice_splits_the_chunk(server: InProcessBackend) -> None:
    doc = seed_document("003")
    server.script = ["length", "length"]
    result = summarize(server, doc, 4000)  # one chunk: the whole article
    maps = [b for b in server.bodies() if prompt_kind(b) == "map"]
    assert [b["max_tokens"] for b in maps[:2]] == [512, 1024]  # the retry doubled the output budget
    halves = [between(user_text(b), "article") for b in maps[2:]]
    assert len(halves) >= 2 and "".join(halves) == between(user_text(maps[0]), "article")
    assert sum(1 for b in server.bodies() if prompt_kind(b) == "reduce") == 1
    assert result.title


def test_reply_still_in_chinese_is_rejected_and_asked_again(server: InProcessBackend) -> None:
    doc = seed_document("003")
    answered: list[str] = []

    def lazy_model(body: dict[str, Any]) -> str:
        reply = json.loads(default_responder(body))
        if not answered:  # the first reply copies the article's headline instead of translating
            reply["title"] = "“千问恐慌”席卷硅谷,谁在颤抖?"
            reply["summary"] = "千问恐慌席卷硅谷。"
        answered.append(reply["title"])
        return json.dumps(reply, ensure_ascii=False)

    server.responder = lazy_model
    result = summarize(server, doc, 4000)
    assert len(server.bodies()) == 2
    assert "must be written in English" in server.bodies()[1]["messages"][-1]["content"]
    assert result.title.isascii()


def test_reply_in_chinese_twice_is_kept_and_shown_as_untranslated(server: InProcessBackend) -> None:
    # A 0.5B model may answer in Chinese however often it is asked: the article is not lost, the
    # repair request names the untranslated text, and what stays Chinese is flagged for the reader.
    doc = seed_document("003")
    chinese = "千问恐慌席卷硅谷,谁在颤抖"

    def stubborn_model(body: dict[str, Any]) -> str:
        reply = json.loads(default_responder(body))
        reply["title"], reply["summary"] = chinese, chinese + "。"
        return json.dumps(reply, ensure_ascii=False)

    server.responder = stubborn_model
    result = summarize(server, doc, 4000)
    kinds = [prompt_kind(b) for b in server.bodies()]
    # Asked once more, then kept; one repair request names the untranslated text (repair once, then tell).
    assert kinds == ["map", "map", "repair"]
    assert result.title == chinese
    assert {c.kind for c in result.checks} == {"untranslated"}
    assert any(c.text and c.text in chinese for c in result.checks)  # the Chinese fragments are named


def test_glossary_item_with_chinese_english_is_dropped_not_the_reply(server: InProcessBackend) -> None:
    doc = seed_document("000")

    def careless_model(body: dict[str, Any]) -> str:
        reply = json.loads(default_responder(body))
        if prompt_kind(body) == "map":
            reply["glossary"].append({"source": "中国", "target": "中国", "kind": "place"})
        return json.dumps(reply, ensure_ascii=False)

    server.responder = careless_model
    result = summarize(server, doc, 4000)
    assert [prompt_kind(b) for b in server.bodies()] == ["map"]  # no corrective retry for one bad item
    assert all(entry.target != "中国" for entry in result.glossary)
    assert any(flag.startswith("glossary_invalid:") for flag in result.flags)


def test_glossary_is_verified_against_the_article(server: InProcessBackend) -> None:
    doc = seed_document("000")
    result = summarize(server, doc, 4000)
    sources = [entry.source for entry in result.glossary]
    assert INVENTED_TERM["source"] not in sources and result.dropped_terms == 1
    assert "通義千問" in sources  # the model said 通义千问; the article writes it in Traditional
    assert all(entry.source in doc.text for entry in result.glossary)
    assert "glossary_dropped:1" in result.flags


def test_glossary_terms_whose_english_cannot_stand_are_dropped() -> None:
    from pipeline.model.english import usable_term

    assert usable_term({"source": "通义千问", "target": "Tongyi Qianwen", "kind": "product"})
    assert usable_term({"source": "Qwen", "target": "Tongyi Qwen", "kind": "product"})
    assert usable_term({"source": "Z.ai", "target": "Z.AI", "kind": "organisation"})
    assert not usable_term({"source": "OpenAI", "target": "GPU", "kind": "organisation"})  # seen on a 0.5B model
    assert not usable_term({"source": "中国", "target": "中国", "kind": "place"})
