"""Token counting with tiktoken's cl100k_base, loaded from the copy shipped in pipeline/data.

tiktoken fetches encoding files over the network on first use; we ship the file and verify it
against tiktoken's published sha256 instead, so counting works offline.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING

from pipeline.errors import ResourceError

if TYPE_CHECKING:
    import tiktoken

TokenCounter = Callable[[str], int]

ENCODING_NAME = "cl100k_base"
ENCODING_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# The split pattern and special tokens of cl100k_base, as defined in tiktoken_ext/openai_public.py.
_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


def parse_bpe_ranks(contents: bytes) -> dict[bytes, int]:
    """Parse a .tiktoken file: one base64 token and its rank per line."""
    fields, lines = contents.split(), contents.splitlines()
    if len(fields) != 2 * (len(lines) - lines.count(b"")):
        return _parse_line_by_line(contents)  # not two fields a line: the slow path says what is wrong
    # 100,000 lines: decoded and paired by map and zip, not a Python loop per line.
    return dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2]), strict=True))


def _parse_line_by_line(contents: bytes) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():
        if line:
            token, rank = line.split()
            ranks[binascii.a2b_base64(token)] = int(rank)
    return ranks


def _published_ranks(contents: bytes) -> dict[bytes, int]:
    """parse_bpe_ranks for the file whose hash was just checked: its ranks are 0, 1, 2... line by line
    (tests/test_fast_paths.py holds the two parses equal), so only the tokens need decoding."""
    tokens = contents.split()[0::2]
    return dict(zip(map(binascii.a2b_base64, tokens), range(len(tokens)), strict=True))


@functools.cache
def load_encoding() -> tiktoken.Encoding:
    """Build cl100k_base from the shipped file; refuse a file that does not match the published hash."""
    import tiktoken

    contents = resources.files("pipeline").joinpath("data", f"{ENCODING_NAME}.tiktoken").read_bytes()
    digest = hashlib.sha256(contents).hexdigest()
    if digest != ENCODING_SHA256:
        raise ResourceError(f"shipped {ENCODING_NAME}.tiktoken is corrupt (sha256 {digest[:12]}…): reinstall brief")
    return tiktoken.Encoding(
        name=ENCODING_NAME,
        pat_str=_PATTERN,
        mergeable_ranks=_published_ranks(contents),
        special_tokens=_SPECIAL_TOKENS,
    )


def count_tokens(text: str) -> int:
    """Tokens in `text`; special-token look-alikes in articles count as plain text."""
    return len(load_encoding().encode_ordinary(text))


# Counters whose counts add up across joins (pipeline.ingest.joins proves it for cl100k_base's
# pre-tokenizer; len adds up everywhere): the chunker trusts them without recounting its chunks.
ADDITIVE_AT_JOINS: frozenset[TokenCounter] = frozenset({count_tokens, len})


def default_counter() -> TokenCounter:
    return count_tokens
