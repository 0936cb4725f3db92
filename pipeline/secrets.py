"""Secrets (API keys, URL passwords) never reach a log, message, manifest, cache or output.

Two mechanisms: URLs are shown and stored without their `user:password@` part, and every text
that leaves brief for a person or a file passes through `scrub`, which replaces each registered
secret wherever it appears (an error body that echoes the key included).
"""

from __future__ import annotations

import threading
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "[redacted]"
# Short values would redact ordinary words; real keys and passwords worth hiding are longer.
_MIN_SECRET_CHARS = 6
_secrets: list[str] = []
_lock = threading.Lock()


def register(secret: str | None) -> None:
    """Scrub this value (and its URL-decoded form) from everything shown or written from now on."""
    if not secret:
        return
    with _lock:
        for value in {secret, unquote(secret)}:
            if len(value) >= _MIN_SECRET_CHARS and value not in _secrets:
                _secrets.append(value)
        _secrets.sort(key=len, reverse=True)  # longest first, so a key's prefix never leaves its tail


def register_url(url: str | None) -> None:
    """Register the password (and user name) embedded in a URL."""
    if not url:
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    register(parts.password)
    if parts.password:
        register(parts.username)


def scrub(text: str) -> str:
    """`text` with every registered secret replaced."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def public_url(url: str | None) -> str | None:
    """The URL without `user:password@` (and without query or fragment, which may carry tokens)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return scrub(url.split("@")[-1])
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def mask(secret: str | None) -> str:
    """Show a key's shape without revealing it."""
    if not secret:
        return "(none)"
    return f"{secret[:3]}…{secret[-2:]}" if len(secret) > 8 else "****"
