"""`brief doctor`: the configuration in effect, the endpoint's kind and models, the schema probe, one tiny request."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.errors import BriefError
from pipeline.secrets import public_url
from pipeline.session import resolve_endpoint


async def doctor(settings: Settings) -> tuple[list[str], bool]:
    """Describe the configuration in effect, list the endpoint's models and make one tiny request.

    Returns the report lines and whether the endpoint answered (True when offline by choice).
    """
    lines = [
        f"base_url:    {public_url(settings.base_url) or '(not set)'} [{settings.base_url_origin}]",
        f"api_key:     {settings.masked_key}",
        f"model:       {settings.model or '(server default)'}",
        f"json_mode:   {settings.json_mode}",
        f"concurrency: {settings.concurrency}",
        f"attempts:    {settings.max_attempts} per request",
        f"chunks:      {settings.max_chunk_tokens} tokens",
        f"cache_dir:   {settings.cache_dir or '(off)'}",
    ]
    notices: list[str] = []
    resolved = resolve_endpoint(settings, notices)
    lines += notices
    if resolved is None:
        return lines, True
    from pipeline.model.endpoint import profile_for

    lines.append(f"endpoint:    {profile_for(resolved).describe()}")
    try:
        lines += await _probe_endpoint(resolved)
    except BriefError as exc:
        return lines + [f"request:     FAILED: {exc}"], False
    return lines, True


async def _probe_endpoint(settings: Settings) -> list[str]:
    from pipeline.model.client import JsonRequest, ModelClient

    client = ModelClient.for_settings(settings, None)
    try:
        models = await client.list_models()
        lines = [f"models:      {', '.join(models) or '(none listed)'}"]
        model = settings.model or (models[0] if models else None)
        if model is None:
            return lines + ["request:     skipped (no model to ask; set BRIEF_MODEL)"]
        client.model = model
        ping = JsonRequest(
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
        enforced = await client.probe_schema() if settings.json_mode in ("auto", "schema") else False
        lines.append(
            "json_schema: " + ("enforced by the server" if enforced else f"not applied: using {client.json_mode}")
        )
        result = await client.complete_json(ping)
        lines.append(
            f"request:     ok with {model} in {result.latency_s * 1000:.0f} ms "
            f"({result.usage.prompt_tokens}+{result.usage.completion_tokens} tokens, json_mode {client.json_mode})"
        )
        return lines
    finally:
        await client.aclose()
