"""Result records shared by the model path and the offline path: one schema for both."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from pipeline.errors import InputError

TermKind = Literal["person", "organisation", "product", "place", "term"]
TERM_KINDS: tuple[str, ...] = get_args(TermKind)
Mode = Literal["model", "offline"]
JsonMode = Literal["auto", "schema", "object", "prompt"]
JSON_MODES: tuple[str, ...] = get_args(JsonMode)
CheckKind = Literal["number", "untranslated", "name"]


@dataclass(frozen=True)
class DocumentMeta:
    """What a web page or feed item says about itself; all empty for a plain file."""

    title: str | None = None
    url: str | None = None  # the address it was fetched from (credentials stripped)
    canonical_url: str | None = None  # <link rel=canonical>, else url without tracking parameters
    published: str | None = None  # ISO 8601 date or date-time
    author: str | None = None
    site: str | None = None

    def is_empty(self) -> bool:
        return not any(vars(self).values())

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


@dataclass(frozen=True)
class RawInput:
    """One input as a source yields it: its bytes, or the reason there are none.

    `source` is what the user named (a path, a URL, a feed item's link, "-"); `id_hint` is the
    readable id stem the source proposes (a file stem, site + slug); the run makes ids unique.
    """

    source: str
    id_hint: str
    payload: bytes | None = None
    error: InputError | None = None
    media_type: str = "text/plain"  # "text/plain" or "text/html"
    charset: str | None = None  # declared by the transport (HTTP Content-Type), if any
    meta: DocumentMeta = field(default_factory=DocumentMeta)


@dataclass(frozen=True)
class CheckFlag:
    """One thing in the English output that the source does not support (faithfulness guard)."""

    kind: CheckKind
    field: str  # "title", "summary", "key_points[2]", "overview"
    text: str  # the offending fragment as written, e.g. "200 billion"
    sentence: str  # the English sentence that holds it
    message: str  # one line for the reader
    suggestions: tuple[str, ...] = ()  # nearest source figures, or the glossary's rendering

    def to_json(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["suggestions"] = list(self.suggestions)
        return data


@dataclass(frozen=True)
class Document:
    """One cleaned story. `text` (original script) is the source of truth."""

    id: str  # the source's id (file stem, site + slug), plus "#1", "#2" when one input holds several stories
    source: str  # path or URL as given, or "-" for stdin
    text: str
    language: str  # "zh", "ja", "ko", "en" or "und"
    script: str | None  # "traditional" | "simplified" | "mixed" for Chinese, else None
    simplified: str  # OpenCC Simplified form for matching (== text when not Chinese)
    flags: tuple[str, ...] = ()
    removed: dict[str, int] = field(default_factory=dict)  # cleaning counts by kind
    meta: DocumentMeta = field(default_factory=DocumentMeta)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["flags"] = list(self.flags)
        del data["meta"]
        if not self.meta.is_empty():
            data["meta"] = self.meta.to_json()
        return data


@dataclass(frozen=True)
class GlossaryEntry:
    """One bilingual term: `source` exactly as written in the article."""

    source: str
    source_simplified: str
    target: str  # English; empty when unknown (offline mode never invents one)
    kind: TermKind
    pinyin: str = ""
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self), warnings=list(self.warnings))


@dataclass(frozen=True)
class Usage:
    """Model traffic behind one result or one run (all zero offline); add two with +."""

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.requests + other.requests,
            self.cache_hits + other.cache_hits,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def to_json(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass(frozen=True)
class ArticleResult:
    """Everything brief says about one document; written as <id>.json and <id>.md."""

    id: str
    source: str
    mode: Mode
    language: str
    script: str | None
    title: str
    summary: str
    key_points: list[str]
    glossary: list[GlossaryEntry]
    flags: list[str] = field(default_factory=list)
    model: str | None = None
    prompt: dict[str, str] | None = None  # {"id": ..., "hash": ...} of the prompt that shaped the summary
    usage: Usage = field(default_factory=Usage)
    dropped_terms: int = 0
    meta: DocumentMeta = field(default_factory=DocumentMeta)
    prompts: tuple[dict[str, str], ...] = ()  # every prompt that shaped the result, beyond `prompt`
    checks: tuple[CheckFlag, ...] = ()

    def to_json(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies every field, the slowest step of a cached re-run.
        data = dict(vars(self))
        data["key_points"] = list(self.key_points)
        data["glossary"] = [entry.to_json() for entry in self.glossary]
        data["flags"] = list(self.flags)
        data["prompt"] = dict(self.prompt) if self.prompt is not None else None
        data["usage"] = self.usage.to_json()
        # Optional sections appear only when they say something, so plain-file results keep their shape.
        for name in ("meta", "prompts", "checks"):
            del data[name]
        if not self.meta.is_empty():
            data["meta"] = self.meta.to_json()
        if self.prompts:
            data["prompts"] = [dict(p) for p in self.prompts]
        if self.checks:
            data["checks"] = [flag.to_json() for flag in self.checks]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArticleResult:
        """Rebuild a result written by to_json (the results cache and `brief check` read them so)."""
        values = dict(data)
        values["glossary"] = [
            GlossaryEntry(**dict(entry, warnings=tuple(entry.get("warnings", ())))) for entry in data["glossary"]
        ]
        values["usage"] = Usage(**data["usage"])
        values["meta"] = DocumentMeta(**data.get("meta", {}))
        values["prompts"] = tuple(data.get("prompts", ()))
        values["checks"] = tuple(
            CheckFlag(**dict(c, suggestions=tuple(c.get("suggestions", ())))) for c in data.get("checks", ())
        )
        return cls(**values)


@dataclass(frozen=True)
class BriefingGroup:
    """Articles about one story, under an English label (an article is in at most one group)."""

    label: str
    article_ids: list[str]


@dataclass(frozen=True)
class Briefing:
    """The run-level briefing: an overview and the story groups, with what it cost."""

    overview: str
    groups: list[BriefingGroup]  # the stories; an article in none has its own section after them
    usage: Usage = field(default_factory=Usage)
    prompt: dict[str, str] | None = None
    error: str | None = None  # why there is no model overview, when there is none
    checks: tuple[CheckFlag, ...] = ()
    covered: tuple[str, ...] = ()  # ids of the articles the overview was written from (sent in the request)


@dataclass
class InputReport:
    """What happened to one input (a row of run.json)."""

    source: str
    status: str = "pending"  # ok | failed | interrupted | skipped (after a fatal error) | duplicate
    error: str | None = None
    documents: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "error": self.error,
            "documents": self.documents,
            **self.usage.to_json(),
            "elapsed_s": round(self.elapsed_s, 3),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InputReport:
        usage = Usage(data["requests"], data["cache_hits"], data["prompt_tokens"], data["completion_tokens"])
        documents = [str(doc_id) for doc_id in data["documents"]]
        return cls(str(data["source"]), str(data["status"]), data["error"], documents, usage, float(data["elapsed_s"]))
