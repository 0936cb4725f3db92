"""Repair once, then tell: a summary whose figures, language or names fail the checks gets one corrective request."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.checks import repair_instructions
from pipeline.checks.review import article_fields, check_result_fields
from pipeline.errors import Deferred, ModelError
from pipeline.ingest.tokens import TokenCounter
from pipeline.model.client import JsonRequest, ModelClient
from pipeline.model.english import language_problem, repetition_problem
from pipeline.model.prompts import Prompt, delimit
from pipeline.records import CheckFlag, Document, GlossaryEntry, Usage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verified:
    """The fields to publish, what still fails, what the repair cost, and whether it was used."""

    fields: dict[str, Any]
    checks: tuple[CheckFlag, ...]
    usage: Usage
    repaired: bool


async def verify_and_repair(
    client: ModelClient,
    prompt: Prompt,
    doc: Document,
    fields: dict[str, Any],
    glossary: Sequence[GlossaryEntry],
    *,
    count_tokens: TokenCounter,
    max_source_tokens: int,
    max_output_tokens: int,
    temperature: float,
    pinyin_of: Callable[[str], str] | None = None,
) -> Verified:
    """Check `fields` against the source; on problems, ask once for a correction and keep the better reply."""
    flags = check_result_fields(doc, fields, glossary, pinyin_of)
    if not flags:
        return Verified(fields, (), Usage(), False)
    # The source goes along when it fits one chunk; the problems name the source figures either way.
    text = doc.text if count_tokens(doc.text) <= max_source_tokens else "(too long to repeat: see the problems)"
    request = JsonRequest(
        prompt_id=prompt.id,
        prompt_hash=prompt.hash,
        messages=prompt.messages(
            {},
            {
                "draft_json": delimit(json.dumps(fields, ensure_ascii=False, indent=1), "draft"),
                "problems": delimit(repair_instructions(flags), "problems"),
                "text": delimit(text, "article"),
            },
        ),
        schema_name=prompt.name,
        schema=prompt.schema,
        max_tokens=max_output_tokens,
        temperature=temperature,
        # Repair once: no corrective round on a reply still in Chinese (a small model asked twice
        # answers alike); such a reply is simply not taken, below.
        check=repetition_problem,
    )
    try:
        result = await client.complete_json(request)
    except Deferred:
        raise  # a batch job: the repair goes into the next round's file
    except ModelError as exc:
        log.info("%s: the repair request failed (%s); the problems are shown to the reader", doc.id, exc)
        return Verified(fields, tuple(flags), Usage(), False)
    repaired = article_fields(result.data)
    after = check_result_fields(doc, repaired, glossary, pinyin_of)
    if language_problem(repaired) is None and len(after) < len(flags):
        return Verified(repaired, tuple(after), result.usage, True)
    return Verified(fields, tuple(flags), result.usage, False)
