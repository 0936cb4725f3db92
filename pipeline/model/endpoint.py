"""What kind of endpoint a run talks to, and the defaults that suit it (a CPU server on this machine, or a hosted API).

A small model on a laptop's CPU takes minutes per reply (prompt at 10-20 tokens/s, output at
1-6 tokens/s), a hosted API seconds: timeouts, sampling knobs and schema handling differ.
Explicit settings always win over these defaults.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pipeline.config import Settings
from pipeline.model.backends import Deadlines

EndpointKind = Literal["local", "hosted"]

_DEADLINES: dict[str, Deadlines] = {
    # total per attempt, to the first token, between tokens, to connect (seconds). A CPU server
    # answers one request at a time: the first token of the eighth request in its queue can be
    # an hour away, which is fine while the replies before it stream; a stall in mid-reply is a
    # fault after two minutes.
    "local": Deadlines(total=3600.0, first_token=1800.0, idle=120.0, connect=10.0, queued=True),
    "hosted": Deadlines(total=180.0, first_token=60.0, idle=30.0, connect=10.0),
}
# llama.cpp's own default, sent explicitly: small models loop less with it, and servers that ignore it lose nothing.
_LOCAL_REPEAT_PENALTY = 1.1


@dataclass(frozen=True)
class EndpointProfile:
    kind: EndpointKind
    deadlines: Deadlines
    extra_body: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        d = self.deadlines
        extra = ", ".join(f"{k} {v}" for k, v in self.extra_body.items()) or "none"
        first = (
            f"first token within {d.first_token:g} s of the server's last progress (a queue is not a fault), "
            f"then {d.total:g} s per reply"
            if d.queued
            else f"{d.total:g} s per attempt, first token within {d.first_token:g} s"
        )
        return (
            f"{self.kind}: {first}, at most {d.idle:g} s between tokens, connect {d.connect:g} s; "
            f"sampling extras: {extra}"
        )


def endpoint_kind(base_url: str | None, origin: str = "flag") -> EndpointKind:
    """Local when the server is on this machine or a private network (or was discovered here)."""
    if origin == "discovered":
        return "local"
    host = urlsplit(base_url or "").hostname or ""
    if host in ("localhost", "host.docker.internal") or host.endswith(".local"):
        return "local"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "hosted"
    return "local" if address.is_loopback or address.is_private or address.is_link_local else "hosted"


def profile_for(settings: Settings) -> EndpointProfile:
    kind = endpoint_kind(settings.base_url, settings.base_url_origin)
    defaults = _DEADLINES[kind]
    total = settings.timeout if settings.timeout is not None else defaults.total
    deadlines = Deadlines(
        total=total,
        first_token=min(settings.first_token_timeout or defaults.first_token, total),
        idle=min(settings.idle_timeout or defaults.idle, total),
        connect=min(settings.connect_timeout, total),
        queued=defaults.queued,
    )
    extra: dict[str, Any] = {}
    repeat = settings.repeat_penalty if settings.repeat_penalty is not None else None
    if repeat is None and kind == "local":
        repeat = _LOCAL_REPEAT_PENALTY
    if repeat is not None and repeat > 0:
        extra["repeat_penalty"] = repeat
    if settings.frequency_penalty:
        extra["frequency_penalty"] = settings.frequency_penalty
    if settings.presence_penalty:
        extra["presence_penalty"] = settings.presence_penalty
    return EndpointProfile(kind, deadlines, extra)
