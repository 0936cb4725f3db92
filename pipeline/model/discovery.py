"""Find a local OpenAI-compatible server (vLLM, llama.cpp, Ollama, LM Studio) to use."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pipeline.errors import EndpointUnavailable

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
class Waiting:
    """A server that answers on a usual port but cannot serve yet: loading a model (503) or too busy to reply."""

    name: str
    base_url: str
    reason: str


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


def probe(name: str, base_url: str, timeout: float) -> Found | Waiting | None:
    """Ask one server for its models: Found, Waiting (loading or busy), or None (nothing usable there)."""
    request = urllib.request.Request(f"{base_url}/models", headers={"Accept": "application/json"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            if response.status != 200:
                return None
            # Model lists are small; a cap keeps a stray non-API service from flooding us.
            payload = response.read(1 << 20)
    except urllib.error.HTTPError as exc:
        return Waiting(name, base_url, "loading its model") if exc.code == 503 else None
    except TimeoutError:
        return Waiting(name, base_url, f"busy (no answer within {timeout:g} s)")
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            return Waiting(name, base_url, f"busy (no answer within {timeout:g} s)")
        return None
    # Refusals and resets are OSError; a non-HTTP service raises HTTPException.
    except (OSError, ValueError, http.client.HTTPException):
        return None
    models = parse_models(payload)
    return Found(name, base_url, models) if models else None


def _probe_all(candidates: Sequence[Candidate], host: str, timeout: float) -> list[Found | Waiting | None]:
    """Probe every candidate at once: the whole search costs about one timeout, not one per port."""
    pool = ThreadPoolExecutor(max_workers=len(candidates), thread_name_prefix="brief-discover")
    try:
        return [f.result() for f in [pool.submit(probe, c[0], base_url_of(c, host), timeout) for c in candidates]]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def discover(
    candidates: Sequence[Candidate] = CANDIDATES,
    host: str = "127.0.0.1",
    timeout: float = 0.3,
    wait: float = 0.0,
    notify: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Found | None:
    """The first candidate, in order, that serves models; None when no usual port has a server.

    A server that answers but is not ready (a model loading: 503; every thread busy: no reply in
    time) is waited for up to `wait` seconds, saying so; past that, EndpointUnavailable rather
    than a silent fall back to offline mode while a server is there.
    """
    if not candidates:
        return None
    deadline = time.monotonic() + wait
    said: set[str] = set()
    probe_timeout = timeout
    while True:
        outcomes = _probe_all(candidates, host, probe_timeout)
        found = next((o for o in outcomes if isinstance(o, Found)), None)
        if found is not None:
            return found
        waiting = [o for o in outcomes if isinstance(o, Waiting)]
        if not waiting:
            return None
        if time.monotonic() >= deadline:
            if wait <= 0:
                return None
            first = waiting[0]
            raise EndpointUnavailable(
                f"{first.name} at {first.base_url} answers but is still {first.reason} after {wait:g} s: "
                "try again when it is ready, point --base-url at it, or use --offline"
            )
        for server in waiting:
            if notify is not None and server.base_url not in said:
                said.add(server.base_url)
                notify(f"{server.name} at {server.base_url} is {server.reason}: waiting up to {wait:g} s for it")
        sleep(min(2.0, max(0.0, deadline - time.monotonic())))
        probe_timeout = min(max(probe_timeout * 2, 1.0), 5.0)  # a busy server gets longer to answer


def choose_model(found: Found, requested: str | None) -> str:
    """The model asked for (--model / BRIEF_MODEL), else the server's first."""
    return requested or found.models[0]
