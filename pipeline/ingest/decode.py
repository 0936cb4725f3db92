"""Bytes → text: BOMs, UTF-8, GB18030, Big5; binary and empty input rejected with a reason."""

from __future__ import annotations

import codecs
import functools
from dataclasses import dataclass
from importlib import resources

from pipeline.errors import InputError
from pipeline.text import HAN_RE

# A text file has no NUL bytes and few control characters; past this share it is binary.
_MAX_CONTROL_SHARE = 0.05
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Tried in order when the bytes are not UTF-8; the best-scoring strict decode wins.
_LEGACY_ENCODINGS = ("gb18030", "big5hkscs")


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # "utf-8-sig", "utf-16" and "utf-32" mean the input had a BOM
    had_crlf: bool


@functools.cache
def common_han() -> frozenset[str]:
    """The ~3,500 most frequent Han characters with their Traditional variants (tools/build_common_han.py)."""
    data = resources.files("pipeline").joinpath("data", "common_han.txt").read_text(encoding="utf-8")
    return frozenset(data.strip())


def common_share(text: str) -> float:
    """Share of Han characters that are common: real Chinese scores high, a wrong codec low."""
    han = HAN_RE.findall(text)
    if not han:
        return 0.0
    common = common_han()
    return sum(1 for c in han if c in common) / len(han)


# Control bytes that text does not hold (tab, newline, form feed, carriage return and escape it may).
_CONTROL_BYTES = bytes(byte for byte in range(32) if byte not in (9, 10, 12, 13, 27))


def _looks_binary(payload: bytes) -> bool:
    sample = payload[:65536]
    if b"\x00" in sample:
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))  # counted in C, not byte by byte
    return controls > len(sample) * _MAX_CONTROL_SHARE


def _decode_legacy(payload: bytes) -> tuple[str, str] | None:
    candidates: list[tuple[float, str, str]] = []
    for encoding in _LEGACY_ENCODINGS:
        try:
            text = payload.decode(encoding)
        except UnicodeDecodeError:
            continue
        candidates.append((common_share(text), encoding, text))
    if not candidates:
        return None
    _, encoding, text = max(candidates, key=lambda c: c[0])
    return text, encoding


def decode_bytes(payload: bytes, source: str) -> Decoded:
    """Decode an article's bytes, or raise InputError saying why it is not a usable article."""
    if not payload:
        raise InputError(source, "empty file")
    for bom, encoding in _BOMS:
        if payload.startswith(bom):
            try:
                text = payload.decode(encoding)
            except UnicodeDecodeError as exc:
                raise InputError(source, f"cannot decode as {encoding} despite its BOM ({exc.reason})") from None
            return _finish(text, encoding, source)
    if _looks_binary(payload):
        raise InputError(source, "binary data, not a text article")
    try:
        return _finish(payload.decode("utf-8"), "utf-8", source)
    except UnicodeDecodeError:
        pass
    legacy = _decode_legacy(payload)
    if legacy is None:
        raise InputError(source, "cannot decode: not UTF-8, UTF-16, GB18030 or Big5 text")
    return _finish(legacy[0], legacy[1], source)


def _finish(text: str, encoding: str, source: str) -> Decoded:
    had_crlf = "\r\n" in text
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    if not text.strip():
        raise InputError(source, "empty file (whitespace only)")
    return Decoded(text, encoding, had_crlf)
