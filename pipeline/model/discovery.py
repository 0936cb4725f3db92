"""Find a local OpenAI-compatible server (vLLM, llama.cpp, Ollama, LM Studio) to use."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

# (name, port, path of the OpenAI-compatible API), in order of preference.
Candidate = tuple[str, int, str]
CANDIDATES: tuple[Candidate, ...] = (
    ("vLLM", 8000, "/v1"),
    ("llama.cpp", 8080, "/v1"),
    ("Ollama", 11434, "/v1"),
    ("LM Studio", 1234, "/v1"),
)
# A proxy from the environment must never see loopback probes (nor make them slow).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Found:
    """A server that answered: what it is, where, and the models it serves."""

    name: str
    base_url: str
    models: list[str]


def base_url_of(candidate: Candidate, host: str = "127.0.0.1") -> str:
    _, port, path = candidate
    return f"http://{host}:{port}/{path.strip('/')}".rstrip("/")


def parse_models(payload: bytes) -> list[str] | None:
    """Return the model ids of a `/models` reply, or None when it is not the OpenAI shape."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    models = [item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]
    return models if models and len(models) == len(items) else None


def probe(name: str, base_url: str, timeout: float) -> Found | None:
    """Ask one server for its models; any failure (refused, timeout, wrong shape) is None."""
    request = urllib.request.Request(f"{base_url}/models", headers={"Accept": "application/json"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            if response.status != 200:
                return None
            # Model lists are small; a cap keeps a stray non-API service from flooding us.
            payload = response.read(1 << 20)
    # URLError, HTTPError, timeouts and resets are OSError; a non-HTTP service raises HTTPException.
    except (OSError, ValueError, http.client.HTTPException):
        return None
    models = parse_models(payload)
    return Found(name, base_url, models) if models else None


def discover(
    candidates: Sequence[Candidate] = CANDIDATES,
    host: str = "127.0.0.1",
    timeout: float = 0.3,
) -> Found | None:
    """Probe every candidate at once; return the first, in candidate order, that serves models.

    The probes run in parallel, so the whole search costs about one timeout, not one per port.
    """
    if not candidates:
        return None
    pool = ThreadPoolExecutor(max_workers=len(candidates), thread_name_prefix="brief-discover")
    try:
        futures = [pool.submit(probe, c[0], base_url_of(c, host), timeout) for c in candidates]
        for future in futures:
            found = future.result()
            if found is not None:
                return found
        return None
    finally:
        # Later candidates no longer matter once an earlier one answered.
        pool.shutdown(wait=False, cancel_futures=True)


def choose_model(found: Found, requested: str | None) -> str:
    """The model asked for (--model / BRIEF_MODEL), else the server's first."""
    return requested or found.models[0]
