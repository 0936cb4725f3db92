"""`brief check`: re-run the faithfulness checks on existing outputs against their sources, with no model."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.checks.review import article_fields, check_offline, check_result_fields, review_run_names
from pipeline.errors import BriefError, ConfigError
from pipeline.records import ArticleResult, CheckFlag, Document, RawInput

_RUN_FILES = {"run.json", "glossary.json"}


@dataclass
class AuditRow:
    """One article of the folder: what the checks found now, or why it could not be checked."""

    id: str
    source: str
    flags: list[CheckFlag] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "source": self.source, "checks": [f.to_json() for f in self.flags], "error": self.error}


def _source_document(result: ArticleResult) -> Document:
    """The article's source, read and cleaned again as the run did (files; saved pages)."""
    from pipeline.app import ingest_input
    from pipeline.sources.files import file_inputs

    if result.source.startswith(("http://", "https://")) or result.meta.url:
        raise ConfigError("a web source: checking it needs the page saved as a file (brief fetches nothing here)")
    (raw,) = list(file_inputs([result.source], io.BytesIO()))
    base = result.id.split("#", 1)[0]
    raw = RawInput(raw.source, base, raw.payload, raw.error, raw.media_type, raw.charset, result.meta)
    for doc in ingest_input(raw, base):
        if doc.id == result.id:
            return doc
    raise ConfigError(f"the source no longer holds story {result.id}")


def audit_folder(folder: Path) -> list[AuditRow]:
    """Check every article in `folder` (a brief output folder) against its source."""
    if not (folder / "run.json").is_file():
        raise ConfigError(f"{folder}: not a brief output folder (no run.json)")
    rows: list[AuditRow] = []
    results: list[ArticleResult] = []
    for path in sorted(folder.glob("*.json")):
        if path.name in _RUN_FILES:
            continue
        try:
            result = ArticleResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            rows.append(AuditRow(path.stem, str(path), error=f"unreadable result ({type(exc).__name__})"))
            continue
        row = AuditRow(result.id, result.source)
        try:
            doc = _source_document(result)
        except BriefError as exc:
            row.error = str(exc)
        else:
            if result.mode == "offline":
                row.flags = list(check_offline(doc, result))
            else:
                row.flags = check_result_fields(doc, article_fields(result), result.glossary)
            results.append(result)
        rows.append(row)
    # One rendering per entity across the run: the run glossary is the folder's glossary.json.
    try:
        terms = json.loads((folder / "glossary.json").read_text(encoding="utf-8"))["terms"]
        glossary = [(t["source"], t["target"], t["kind"]) for t in terms]
    except (OSError, ValueError, KeyError, TypeError):
        glossary = []
    checked = {r.id: r for r in review_run_names(results, [_without_checks(r) for r in results], glossary)}
    for row in rows:
        if row.id in checked:
            row.flags += [f for f in checked[row.id].checks if f not in row.flags]
    return rows


def _without_checks(result: ArticleResult) -> ArticleResult:
    from dataclasses import replace

    return replace(result, checks=())
