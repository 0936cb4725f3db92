"""brief: foreign-language news in, English briefings out.

Library use: build Settings with `load_settings`, run `summarize_inputs` (or `prepare_run`) from an
asyncio program, and read the typed records it returns. Heavy modules load on first use.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import (
    BriefError,
    ConfigError,
    EndpointRejected,
    EndpointUnavailable,
    InputError,
    InvalidOutput,
    ModelError,
    RetriesExhausted,
)
from pipeline.records import (
    ArticleResult,
    Briefing,
    BriefingGroup,
    CheckFlag,
    Document,
    DocumentMeta,
    GlossaryEntry,
    RawInput,
    Usage,
)
from pipeline.run_report import RunReport

_LAZY = {
    "load_settings": "pipeline.config",
    "Settings": "pipeline.config",
    "summarize_inputs": "pipeline.app",
    "prepare_run": "pipeline.app",
    "ingest": "pipeline.ingest.documents",
    "audit_folder": "pipeline.audit",
    "check_article": "pipeline.checks",
}

__all__ = [
    "ArticleResult",
    "BriefError",
    "Briefing",
    "BriefingGroup",
    "CheckFlag",
    "ConfigError",
    "Document",
    "DocumentMeta",
    "EndpointRejected",
    "EndpointUnavailable",
    "GlossaryEntry",
    "InputError",
    "InvalidOutput",
    "ModelError",
    "RawInput",
    "RetriesExhausted",
    "RunReport",
    "Usage",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
