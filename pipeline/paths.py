"""A file name's stem from a path string, without pathlib (shared by sources and ingest)."""

from __future__ import annotations


def path_stem(source: str) -> str:
    """Path(source).stem without a Path: each Path interns its parts, a table that only grows (~300 B per file)."""
    parts = [part for part in source.split("/") if part not in ("", ".")]  # as Path drops them
    name = parts[-1] if parts else ""
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name
