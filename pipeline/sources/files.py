"""Gather input articles: files, folders (sorted, recursive) and stdin, with a reason for each failure."""

from __future__ import annotations

import heapq
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import InputError
from pipeline.paths import path_stem
from pipeline.records import RawInput

ARTICLE_SUFFIXES = (".txt", ".md", ".html", ".htm")
# A news article is a few tens of kilobytes; anything this large is a dump, not an article.
MAX_INPUT_BYTES = 2 * 1024 * 1024
STDIN = "-"


def read_article(path: Path | str) -> bytes | InputError:
    """The bytes of one article file, or the reason it cannot be used."""
    source = str(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        return InputError(source, _os_reason(exc))
    if not stat.S_ISREG(info.st_mode):
        return InputError(source, "not a regular file")
    if info.st_size > MAX_INPUT_BYTES:
        return InputError(source, f"too large: {info.st_size / 1e6:.1f} MB (limit {MAX_INPUT_BYTES / 1e6:.0f} MB)")
    try:
        with open(path, "rb") as handle:
            return _within_limit(source, handle.read(MAX_INPUT_BYTES + 1))
    except OSError as exc:
        return InputError(source, _os_reason(exc))


def _within_limit(source: str, payload: bytes) -> bytes | InputError:
    """Input read with one byte to spare: a stream (stdin) or a file that grew is caught here."""
    if len(payload) > MAX_INPUT_BYTES:
        return InputError(source, f"too large: over {MAX_INPUT_BYTES / 1e6:.0f} MB")
    return payload


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if exc.errno == 40:  # ELOOP
        return "symlink loop"
    return exc.strerror or type(exc).__name__


class ArticleListing:
    """A folder's article paths, sorted, packed into one string, with the entries that could not be read.

    Held for the whole run (the run goes through it in order): as a list of strings, 100,000 files
    held ~10 MB; packed, each path costs its name's characters plus one.
    """

    def __init__(self, folder: str, relative: list[str], errors: list[InputError]) -> None:
        self._prefix = os.path.join(folder, "")
        relative.sort()
        self._packed = "\0".join(relative)  # NUL: the one character no path holds
        self._count = len(relative)
        self._errors = sorted(errors, key=lambda error: error.source)

    def __len__(self) -> int:
        return self._count + len(self._errors)

    def __iter__(self) -> Iterator[str | InputError]:
        return heapq.merge(self._paths(), self._errors, key=lambda item: item if isinstance(item, str) else item.source)

    def _paths(self) -> Iterator[str]:
        text, start = self._packed, 0
        while start < len(text):
            end = text.find("\0", start)
            end = len(text) if end < 0 else end
            yield self._prefix + text[start:end]
            start = end + 1


def folder_articles(folder: Path | str) -> ArticleListing:
    """Every article file under `folder` (its path as a string), sorted; unreadable entries become errors.

    Strings, not Paths: a Path costs several times its string (its parts, each interned).

    Walks as os.walk does (symlinked folders are not entered) but asks each entry's type from the
    listing itself (d_type), so a folder of 1,000 articles costs no stat per file, only per link.
    """
    top = os.fspath(folder)
    cut = len(os.path.join(top, ""))  # every path below starts so: scandir joins as os.path.join does
    found: list[str] = []
    errors: list[InputError] = []
    pending = [top]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except OSError as exc:
            errors.append(InputError(exc.filename or top, _os_reason(exc)))
            continue
        for entry in listed:
            if _is_directory(entry):
                if not entry.is_symlink():
                    pending.append(entry.path)
                continue
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_symlink() and not os.path.exists(entry.path):
                if _is_loop(Path(entry.path)):
                    errors.append(InputError(entry.path, "symlink loop"))
                continue  # a dangling link is not an article
            if os.path.splitext(name)[1].lower() in ARTICLE_SUFFIXES:
                found.append(entry.path[cut:])
    return ArticleListing(top, found, errors)


def _is_directory(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # as os.walk: an entry whose type cannot be read is listed as a file
        return False


def _is_loop(path: Path) -> bool:
    try:
        path.resolve(strict=True)
    except RuntimeError:
        return True
    except OSError as exc:
        return exc.errno == 40
    return False


def file_id(source: str) -> str:
    """The id stem of a file input: its name without extension ("stdin" for -).

    "#" is reserved for story numbers (story.txt with two stories gives story#1, story#2), so a
    file named story#1.txt becomes story_1; other characters a file name may hold but an output
    name should not (control characters, leading dots) are replaced too.
    """
    if source == STDIN:
        return "stdin"
    stem = path_stem(source)
    safe = "".join("_" if c == "#" or not c.isprintable() or c in "/\\" else c for c in stem).lstrip(".")
    return safe or "article"


def file_inputs(
    paths: Sequence[str], stdin: BinaryIO, skip: Callable[[str], bool] = lambda path: False
) -> Iterator[RawInput]:
    """Every input named, in order, folders expanded; bytes are read only when the input is reached.

    `skip` leaves out files inside a folder that must not be read (the run's own outputs).
    """
    for name in paths:
        if name == STDIN:
            payload = _within_limit(STDIN, stdin.read(MAX_INPUT_BYTES + 1))
            yield _raw(STDIN, payload)
            continue
        path = Path(name)
        if path.is_dir():
            empty = True
            for item in folder_articles(path):  # read lazily: the listing is not copied
                if isinstance(item, InputError):
                    empty = False
                    yield _raw(item.source, item)
                elif not skip(item):
                    empty = False
                    yield _raw(item, read_article(item))
            if empty:
                yield _raw(name, InputError(name, "folder holds no .txt, .md or .html articles"))
        elif path.is_symlink() and _is_loop(path):
            yield _raw(name, InputError(name, "symlink loop"))
        else:
            yield _raw(name, read_article(path))


def _raw(source: str, payload: bytes | InputError) -> RawInput:
    media = "text/html" if source.lower().endswith((".html", ".htm")) else "text/plain"
    if isinstance(payload, InputError):
        return RawInput(source, file_id(source), error=payload, media_type=media)
    return RawInput(source, file_id(source), payload, media_type=media)
