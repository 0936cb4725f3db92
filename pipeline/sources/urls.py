"""URLs for people and for keys: credentials stripped, canonical form, and ids that stay inside a folder."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

# Query parameters that only say where a click came from; dropping them makes one story one URL.
_TRACKING = re.compile(
    r"^(?:utm_.*|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|mc_eid|spm|isappinstalled)$", re.I
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Slugs that say nothing about the story: the page's id lives elsewhere (query, parent folder).
_GENERIC_SLUGS = {"index", "default", "article", "detail", "details", "show", "view", "content", "news", "page", "post"}
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_ID_LENGTH = 80


def is_web_url(text: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(text.strip())
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def strip_credentials(url: str) -> str:
    """The URL without `user:password@`: what may be shown, logged or stored."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/@]*@", "//", url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def host_of(url: str) -> str:
    """The host name, lower-case and without a leading "www."."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def canonical_url(url: str) -> str:
    """One spelling per page: lower-case scheme and host, no default port, credentials, fragment or tracking
    parameters, query sorted. Used as the key for "seen", the cache and duplicate detection."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return strip_credentials(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
    # Quote what is not ASCII and upper-case escapes, so that 中, %e4%b8%ad and %E4%B8%AD are one URL.
    path = quote(parts.path, safe="/%:@!$&'()*+,;=~-._") or "/"
    path = re.sub(r"%[0-9a-fA-F]{2}", lambda m: m.group(0).upper(), path)
    return urlunsplit((scheme, netloc, path, urlencode(sorted(query), doseq=True), ""))


def short_hash(text: str, length: int = 10) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def safe_id(text: str, limit: int = MAX_ID_LENGTH) -> str:
    """`text` reduced to [A-Za-z0-9._-], no "..", no leading dot or dash, at most `limit` characters."""
    cleaned = _ID_UNSAFE.sub("-", text)
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip(".-_")
    return cleaned[:limit].rstrip(".-_")


def url_id(url: str) -> str:
    """A stable, readable id for a page: "site_slug" (news.example.com_doc-inax123), or "site_<hash>" when
    the last path segment is empty, generic or not ASCII. Safe as a file name in any output folder."""
    canonical = canonical_url(url)
    parts = urlsplit(canonical)
    site = safe_id(host_of(canonical), 40) or "page"
    segments = [s for s in unquote(parts.path).split("/") if s]
    slug = segments[-1] if segments else ""
    stem = slug.rsplit(".", 1)[0] if "." in slug else slug
    generic = stem.lower() in _GENERIC_SLUGS
    if generic and len(segments) > 1:
        stem = f"{segments[-2]}-{stem}"
    readable = safe_id(stem, 40) if stem.isascii() else ""
    if not readable or generic or parts.query:
        # The slug alone would not tell two pages apart: a hash of the whole URL does.
        readable = f"{readable}-{short_hash(canonical, 8)}" if readable else short_hash(canonical)
    return safe_id(f"{site}_{readable}") or short_hash(canonical)
