"""What the CLI commands do, as library calls: the CLI only parses options and maps errors to exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.records import ArticleResult, Document
from pipeline.runner import BatchJob, ProgressHook, RunReport

if TYPE_CHECKING:
    from pipeline.model.client import JsonRequest

Notify = Callable[[str], None]


@dataclass(frozen=True)
class CleanedInput:
    """One input file's documents, or the reason it could not be read."""

    source: str
    documents: list[Document]
    error: InputError | None = None


def clean_inputs(paths: Sequence[str], stdin: BinaryIO) -> list[CleanedInput]:
    """Read and clean every input; a bad one is reported, the others still processed."""
    from pipeline.ingest.documents import document_id, ingest
    from pipeline.sources.files import read_inputs

    cleaned: list[CleanedInput] = []
    for source, payload in read_inputs(paths, stdin):
        try:
            if isinstance(payload, InputError):
                raise payload
            doc_id = document_id(source)
            cleaned.append(CleanedInput(source, ingest(payload, source, doc_id)))
        except InputError as exc:
            cleaned.append(CleanedInput(source, [], exc))
    return cleaned


def chunk_inputs(cleaned: Sequence[CleanedInput], max_tokens: int) -> list[dict[str, object]]:
    """Chunk every cleaned document with the shipped tokenizer."""
    from pipeline.ingest.chunk import chunk_document
    from pipeline.ingest.tokens import default_counter

    count = default_counter()
    return [
        chunk.to_json()
        for item in cleaned
        for doc in item.documents
        for chunk in chunk_document(doc, max_tokens, count)
    ]


async def summarize_inputs(
    settings: Settings,
    paths: Sequence[str],
    stdin: BinaryIO,
    out_dir: Path | None,
    notify: Notify,
    progress: ProgressHook | None = None,
) -> RunReport:
    """The main job: read inputs, summarise with the model (or offline), write outputs and run.json."""
    from pipeline.session import open_session
    from pipeline.sources.files import read_inputs

    inputs = read_inputs(paths, stdin)
    session = await open_session(settings)
    for notice in session.notices:
        notify(notice)
    job = BatchJob(
        summarizer=session.summarizer,
        out_dir=out_dir,
        endpoint=session.settings.base_url,
        max_parallel_inputs=max(4, session.settings.concurrency * 2),
        progress=progress,
        on_error=notify,
        client_stats=session.client_stats,
        results_cache=session.cache,
    )
    try:
        return await job.run(inputs)
    finally:
        await session.close()


def render_article(result: ArticleResult, fmt: str) -> str:
    """One article for stdout: Markdown, or the JSON record."""
    from pipeline.output.render import article_markdown, dump_json

    return dump_json(result.to_json()) if fmt == "json" else article_markdown(result)


def render_stdout(results: Sequence[ArticleResult], fmt: str) -> str:
    """Every document of a stdin article (one file may hold several stories)."""
    if fmt == "json":
        records = [r.to_json() for r in results]
        return json.dumps(records[0] if len(records) == 1 else records, ensure_ascii=False, indent=2) + "\n"
    return "\n---\n\n".join(render_article(r, "md") for r in results)


async def doctor(settings: Settings) -> tuple[list[str], bool]:
    """Describe the configuration in effect, list the endpoint's models and make one tiny request.

    Returns the report lines and whether the endpoint answered (True when offline by choice).
    """
    from pipeline.session import resolve_endpoint

    lines = [
        f"base_url:    {settings.base_url or '(not set)'} [{settings.base_url_origin}]",
        f"api_key:     {settings.masked_key}",
        f"model:       {settings.model or '(server default)'}",
        f"json_mode:   {settings.json_mode}",
        f"concurrency: {settings.concurrency}",
        f"timeout:     {settings.timeout:g} s (connect {settings.connect_timeout:g} s), "
        f"{settings.max_attempts} attempts",
        f"chunks:      {settings.max_chunk_tokens} tokens",
        f"cache_dir:   {settings.cache_dir or '(off)'}",
    ]
    notices: list[str] = []
    resolved = resolve_endpoint(settings, notices)
    lines += notices
    if resolved is None:
        return lines, True
    from pipeline.errors import BriefError

    try:
        lines += await _probe_endpoint(resolved)
    except BriefError as exc:
        return lines + [f"request:     FAILED: {exc}"], False
    return lines, True


async def _probe_endpoint(settings: Settings) -> list[str]:
    from pipeline.model.client import ModelClient

    client = ModelClient(settings, None)
    try:
        models = await client.list_models()
        lines = [f"models:      {', '.join(models) or '(none listed)'}"]
        model = settings.model or (models[0] if models else None)
        if model is None:
            return lines + ["request:     skipped (no model to ask; set BRIEF_MODEL)"]
        client.model = model
        result = await client.complete_json(_ping_request())
        lines.append(
            f"request:     ok with {model} in {result.latency_s * 1000:.0f} ms "
            f"({result.prompt_tokens}+{result.completion_tokens} tokens, json_mode {client.json_mode})"
        )
        return lines
    finally:
        await client.aclose()


def _ping_request() -> JsonRequest:
    from pipeline.model.client import JsonRequest

    return JsonRequest(
        prompt_id="doctor.ping",
        prompt_hash="0",
        messages=[
            {"role": "system", "content": 'Reply with the JSON object {"ok": true} and nothing else.'},
            {"role": "user", "content": "ping"},
        ],
        schema_name="ping",
        schema={
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": False,
        },
        max_tokens=20,
        temperature=0.0,
    )
