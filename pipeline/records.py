"""Result records shared by the model path and the offline path: one schema for both."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TermKind = Literal["person", "organisation", "product", "place", "term"]
TERM_KINDS: tuple[str, ...] = ("person", "organisation", "product", "place", "term")
Mode = Literal["model", "offline"]


@dataclass(frozen=True)
class Document:
    """One cleaned story. `text` (original script) is the source of truth."""

    id: str  # file stem, plus "#1", "#2" when one file holds several stories
    source: str  # path as given on the command line, or "-" for stdin
    text: str
    language: str  # "zh", "ja", "ko", "en" or "und"
    script: str | None  # "traditional" | "simplified" | "mixed" for Chinese, else None
    simplified: str  # OpenCC Simplified form for matching (== text when not Chinese)
    flags: tuple[str, ...] = ()
    removed: dict[str, int] = field(default_factory=dict)  # cleaning counts by kind

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["flags"] = list(self.flags)
        return data


@dataclass
class GlossaryEntry:
    """One bilingual term: `source` exactly as written in the article."""

    source: str
    source_simplified: str
    target: str  # English; empty when unknown (offline mode never invents one)
    kind: str
    pinyin: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class Usage:
    """Model traffic behind one result (all zero offline)."""

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.requests += other.requests
        self.cache_hits += other.cache_hits
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass
class ArticleResult:
    """Everything brief says about one document; written as <id>.json and <id>.md."""

    id: str
    source: str
    mode: str  # "model" | "offline"
    language: str
    script: str | None
    title: str
    summary: str
    key_points: list[str]
    glossary: list[GlossaryEntry]
    flags: list[str] = field(default_factory=list)
    model: str | None = None
    prompt: dict[str, str] | None = None  # {"id": ..., "hash": ...}
    usage: Usage = field(default_factory=Usage)
    dropped_terms: int = 0

    def to_json(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies every field, the slowest step of a cached re-run.
        data = dict(vars(self))
        data["key_points"] = list(self.key_points)
        data["glossary"] = [dict(vars(entry), warnings=list(entry.warnings)) for entry in self.glossary]
        data["flags"] = list(self.flags)
        data["prompt"] = dict(self.prompt) if self.prompt is not None else None
        data["usage"] = dict(vars(self.usage))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArticleResult:
        """Rebuild a result written by to_json (the results cache stores them so)."""
        values = dict(data)
        values["glossary"] = [GlossaryEntry(**entry) for entry in data["glossary"]]
        values["usage"] = Usage(**data["usage"])
        return cls(**values)
