"""Chunking: coverage, order and the token bound, as properties; sentence-first cutting on seeds."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ingest.chunk import chunk_document, split_text
from pipeline.ingest.documents import ingest
from pipeline.ingest.tokens import count_tokens

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

# Text built from the pieces that make chunking hard: CJK and Latin sentences, clause marks,
# closing quotes, long unbroken runs, newlines and emoji.
_pieces = st.sampled_from(
    [
        "中國人工智能迅速崛起",
        "。",
        "，",
        "！",
        "？",
        "」",
        "”",
        "\n",
        " ",
        "The model",
        ". ",
        "3.5",
        "Z.ai",
        "…",
        "；",
        "a" * 40,
        "語" * 30,
        "🚀",
        "DeepSeek-R1",
        "(OSI)",
    ]
)
texts = st.lists(_pieces, max_size=60).map("".join)


@settings(max_examples=150, deadline=None)
@given(text=texts, max_tokens=st.integers(min_value=4, max_value=60))
def test_chunks_cover_the_text_in_order_within_the_bound(text: str, max_tokens: int) -> None:
    pieces = split_text(text, max_tokens, count_tokens)
    assert "".join(pieces) == text  # nothing lost, nothing duplicated, in order
    assert all(piece for piece in pieces)
    assert all(count_tokens(piece) <= max_tokens for piece in pieces)


@settings(max_examples=60, deadline=None)
@given(
    sentences=st.lists(
        st.sampled_from(["中國AI模型下載量超過美國。", "硅谷開始倒戈！", "他說：「很好。」"]), min_size=1, max_size=30
    ),
    max_tokens=st.integers(min_value=30, max_value=200),
)
def test_chunks_end_at_sentence_boundaries_when_sentences_fit(sentences: list[str], max_tokens: int) -> None:
    pieces = split_text("".join(sentences), max_tokens, count_tokens)
    assert all(piece.endswith(("。", "！", "」")) for piece in pieces)


def test_long_sentence_is_cut_at_clauses_before_hard_cuts() -> None:
    sentence = "，".join(["中國開源模型的下載量已經超過美國"] * 12) + "。"
    pieces = split_text(sentence, 40, count_tokens)
    assert len(pieces) > 1
    assert all(piece.endswith(("，", "。")) for piece in pieces)


def test_unbroken_run_is_cut_hard_without_loss() -> None:
    run = "語" * 500
    pieces = split_text(run, 25, count_tokens)
    assert "".join(pieces) == run and all(count_tokens(p) <= 25 for p in pieces) and len(pieces) > 2


def test_seed_chunks_are_numbered_in_order_and_counted() -> None:
    path = next(SEEDS.glob("004_*.txt"))
    for doc in ingest(path.read_bytes(), str(path)):
        chunks = chunk_document(doc, 200, count_tokens)
        assert [c.index for c in chunks] == list(range(len(chunks)))
        assert {c.document for c in chunks} == {doc.id}
        assert "".join(c.text for c in chunks) == doc.text
        assert all(c.tokens == count_tokens(c.text) <= 200 for c in chunks)
        assert all(c.text.rstrip().endswith(("。", "」", "：", "？", "！")) for c in chunks[:-1])


def test_counter_is_a_parameter() -> None:
    pieces = split_text("一。二。三。四。", 4, len)  # count characters instead of tokens
    assert pieces == ["一。二。", "三。四。"]
