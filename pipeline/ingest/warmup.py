"""One-time loads of the article path (OpenCC tables, the tokenizer, lazily built patterns), done in a thread.

Each costs 20-300 ms the first time it is used. Used first on the event loop (the first article's
ingest, its first token count), that time is a stall every other task waits through; loaded here,
in a worker thread when the run meets its first article not in the cache, it is not. A fully
cached re-run never loads them. Loading is all they do: every function called gives the same
answers afterwards, so outputs do not change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.records import Document

log = logging.getLogger(__name__)

# A short Traditional Chinese story with Hong Kong and Taiwan forms, figures and an English name:
# cleaning it reaches every OpenCC configuration ingest uses (t2s, s2t, hk2s, tw2s) and the checks' patterns.
SAMPLE = (
    "香港特區政府今日公布，2024年第三季度本地生產總值按年增長1.8%，約為七千億港元。\n"
    "財政司司長表示，説明會將於下週舉行，OpenAI 與微軟的合作亦獲提及，台灣的半導體線路仍然緊張。\n"
)
OPENCC_CONFIGS = ("t2s", "s2t", "hk2s", "tw2s")


def warm_up_ingest() -> None:
    """What the first article's ingest would load: the cleaner's patterns, language detection, OpenCC."""
    _sample_documents()


def _sample_documents() -> list[Document]:
    from pipeline.ingest.documents import ingest
    from pipeline.ingest.language import convert

    for config in OPENCC_CONFIGS:
        convert(SAMPLE, config)
    return ingest(SAMPLE.encode("utf-8"), "warm-up.txt", "warm-up")


def warm_up_model_path() -> None:
    """warm_up_ingest, then what the first summary would load: the tokenizer and the source checks."""
    from pipeline.checks.review import check_result_fields
    from pipeline.ingest.tokens import count_tokens

    (doc,) = _sample_documents()
    count_tokens(SAMPLE)
    fields = {"title": "Hong Kong GDP grew 1.8%", "summary": "About HK$700 billion, said OpenAI.", "key_points": []}
    check_result_fields(doc, fields, [])


def quietly(load: Callable[[], None]) -> None:
    """Run a warm-up; a failure is left for the real first use to report, where it always was."""
    try:
        load()
    except Exception as exc:  # noqa: BLE001  a warm-up never decides the run
        log.debug("warm-up %s failed: %s", getattr(load, "__name__", load), exc)
