"""Settings: flags > environment > config file > defaults. The only module that reads os.environ."""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.records import JSON_MODES
from pipeline.secrets import mask

# With a key but no endpoint, a user means what the openai SDK means: OpenAI's own API.
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
OPENAI_DEFAULT_MODEL = "gpt-4o-mini"
# Endpoints the user named: only these ever receive the API key.
CONFIGURED_ORIGINS = frozenset({"flag", "env", "config", "openai-default"})


def default_cache_dir() -> Path:
    """Return the platform's per-user cache directory for brief."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("brief", appauthor=False))


def default_config_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("brief", appauthor=False)) / "config.toml"


@dataclass(frozen=True)
class Settings:
    """Everything a run needs, built once at the edge and passed down."""

    base_url: str | None = None  # None: discover a local server, else offline
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    timeout: float | None = None  # hard deadline per attempt; None: by endpoint kind (see model/endpoint.py)
    first_token_timeout: float | None = None
    idle_timeout: float | None = None
    connect_timeout: float = 10.0
    stream: bool = True
    discovery_wait: float = 120.0  # seconds to wait for a local server that is loading or busy
    repeat_penalty: float | None = None  # None: 1.1 for a local server, not sent to a hosted API
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    max_attempts: int = 5
    concurrency: int = 8
    json_mode: str = "auto"
    max_chunk_tokens: int = 3500
    max_output_tokens: int = 2048
    temperature: float = 0.2
    cache_dir: Path | None = None  # None: caching off
    out_dir: Path = Path("out")
    offline: bool = False
    strict: bool = False  # an article with unverified statements fails (exit 1)
    # Where base_url came from ("flag", "env", "config", "discovered", "default"), for `brief doctor`.
    base_url_origin: str = "default"

    @property
    def masked_key(self) -> str:
        return mask(self.api_key)

    @property
    def api_key_for_endpoint(self) -> str | None:
        """The key, only for an endpoint the user configured: a discovered local server never gets it."""
        return self.api_key if self.base_url_origin in CONFIGURED_ORIGINS else None

    def with_endpoint(self, base_url: str, model: str | None, origin: str) -> Settings:
        return replace(self, base_url=base_url, model=self.model or model, base_url_origin=origin)


mask_secret = mask


_ENV_NAMES: dict[str, tuple[str, ...]] = {
    "base_url": ("OPENAI_BASE_URL", "OPENAI_API_BASE"),
    "api_key": ("OPENAI_API_KEY",),
    "model": ("BRIEF_MODEL",),
    "timeout": ("BRIEF_TIMEOUT",),
    "first_token_timeout": ("BRIEF_FIRST_TOKEN_TIMEOUT",),
    "idle_timeout": ("BRIEF_IDLE_TIMEOUT",),
    "stream": ("BRIEF_STREAM",),
    "discovery_wait": ("BRIEF_DISCOVERY_WAIT",),
    "repeat_penalty": ("BRIEF_REPEAT_PENALTY",),
    "frequency_penalty": ("BRIEF_FREQUENCY_PENALTY",),
    "presence_penalty": ("BRIEF_PRESENCE_PENALTY",),
    "max_attempts": ("BRIEF_MAX_ATTEMPTS",),
    "concurrency": ("BRIEF_CONCURRENCY",),
    "json_mode": ("BRIEF_JSON_MODE",),
    "max_chunk_tokens": ("BRIEF_MAX_CHUNK_TOKENS",),
    "cache_dir": ("BRIEF_CACHE_DIR",),
    "out_dir": ("BRIEF_OUT",),
    "strict": ("BRIEF_STRICT",),
}


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    no_cache: bool = False,
) -> Settings:
    """Merge flags > env > config file > defaults into Settings, validating each value."""
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    explicit = environ.get("BRIEF_CONFIG")
    if explicit and not Path(explicit).expanduser().exists():
        raise ConfigError(f"BRIEF_CONFIG: no config file at {explicit}")
    path = Path(explicit).expanduser() if explicit else (config_path or default_config_path())
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("flag", flags),
        ("env", _from_env(environ)),
        ("config", _read_config_file(path)),
    ]
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in (f.name for f in fields(Settings)):
        for layer_name, layer in layers:
            if name in layer and layer[name] not in ("", None):
                merged[name] = layer[name]
                origins[name] = layer_name
                break
    merged["base_url_origin"] = origins.get("base_url", "default")
    if no_cache:
        merged["cache_dir"] = None
    elif "cache_dir" not in merged:
        merged["cache_dir"] = default_cache_dir()
    try:
        settings = _validated(merged)
    except ConfigError as exc:
        bad = next((n for n in origins if str(exc).startswith(n)), None)
        if bad is not None and origins[bad] == "config":
            raise ConfigError(f"config file {path}: {exc}") from None
        raise
    if settings.base_url is None and settings.api_key and not settings.offline:
        settings = replace(
            settings,
            base_url=OPENAI_DEFAULT_URL,
            model=settings.model or OPENAI_DEFAULT_MODEL,
            base_url_origin="openai-default",
        )
    return settings


def _from_env(environ: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, env_names in _ENV_NAMES.items():
        for env_name in env_names:
            if environ.get(env_name):
                found[name] = environ[env_name]
                break
    if environ.get("BRIEF_OFFLINE", "").lower() in ("1", "true", "yes"):
        found["offline"] = "true"
    return found


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return data


_FLOATS = (
    "timeout",
    "first_token_timeout",
    "idle_timeout",
    "connect_timeout",
    "temperature",
    "repeat_penalty",
    "frequency_penalty",
    "presence_penalty",
    "discovery_wait",
)


def _validated(values: dict[str, Any]) -> Settings:
    converted: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name not in values:
            continue
        converted[f.name] = _convert(f.name, values[f.name])
    settings = Settings(**converted)
    if settings.json_mode not in JSON_MODES:
        raise ConfigError(f"json_mode: expected one of {', '.join(JSON_MODES)}, got {settings.json_mode!r}")
    for name in ("concurrency", "max_attempts", "max_chunk_tokens", "max_output_tokens"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name}: must be at least 1")
    if settings.max_chunk_tokens < 50:
        raise ConfigError("max_chunk_tokens: must be at least 50")
    for name in _FLOATS:
        value = getattr(settings, name)
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"{name}: must be a finite number, got {value!r}")
    for name in ("timeout", "first_token_timeout", "idle_timeout", "connect_timeout"):
        value = getattr(settings, name)
        if value is not None and not 0 < value <= 86_400:
            raise ConfigError(f"{name}: must be positive and at most a day, got {value!r}")
    if not 0 <= settings.temperature <= 2:
        raise ConfigError("temperature: must be between 0 and 2")
    if settings.concurrency > 1024 or settings.max_attempts > 100:
        raise ConfigError("concurrency / max_attempts: at most 1024 and 100")
    if settings.base_url and not settings.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"base_url: expected an http(s) URL, got {settings.base_url!r}")
    return settings


def _convert(name: str, value: Any) -> Any:
    try:
        if name in _FLOATS:
            return float(value) if value is not None else None
        if name in ("max_attempts", "concurrency", "max_chunk_tokens", "max_output_tokens"):
            return int(value)
        if name in ("cache_dir", "out_dir"):
            return Path(value).expanduser() if value is not None else None
        if name in ("offline", "strict", "stream"):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if name == "base_url":
            from pipeline.secrets import register_url

            register_url(str(value))
            return str(value).rstrip("/")
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: invalid value {_shown(name, value)!r}") from exc


def _shown(name: str, value: Any) -> Any:
    return "[redacted]" if name == "api_key" else value
