"""Faithfulness checks of English output against its source: figures, untranslated text, names.

Pure and deterministic: no I/O, no model. Entry points are in `guard`; the extractors are usable alone.
"""

from __future__ import annotations

from pipeline.checks.english import Mention, extract_english
from pipeline.checks.guard import (
    ArticleProse,
    check_article,
    check_overview,
    check_run_names,
    mark_unverified,
    repair_instructions,
)
from pipeline.checks.quantity import Quantity
from pipeline.checks.source import SourceFacts, source_facts

__all__ = [
    "ArticleProse",
    "Mention",
    "Quantity",
    "SourceFacts",
    "check_article",
    "check_overview",
    "check_run_names",
    "extract_english",
    "mark_unverified",
    "repair_instructions",
    "source_facts",
]
