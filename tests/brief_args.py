"""The `brief summarize` arguments both end-to-end suites use: the fake server, and out/ and cache/ in a temp dir."""

from __future__ import annotations

from pathlib import Path


def summarize_args(base_url: str, tmp_path: Path, *paths: str, chunk_tokens: int) -> list[str]:
    return [
        "summarize",
        *paths,
        "--out",
        str(tmp_path / "out"),
        "--base-url",
        base_url,
        "--model",
        "fake-qwen",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--max-chunk-tokens",
        str(chunk_tokens),
    ]
