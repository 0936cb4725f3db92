"""The output folder: brief writes only files it created, never an input, never a file it did not make.

Ownership is recorded in `.brief-outputs` (one file name per line) inside the folder. A file that
exists but is not listed there belongs to the user: brief refuses to replace it (an article gets
another id instead; a run file such as briefing.md cannot, so the run stops before it starts).
Folders written by older versions of brief (a run.json but no list) are adopted from run.json.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.errors import OutputError
from pipeline.fsutil import write_atomic, write_atomic_pieces

log = logging.getLogger(__name__)

OWNED_LIST = ".brief-outputs"
RUN_FILES = ("run.json", "briefing.md", "glossary.tsv", "glossary.json")
# Article ids that would be read as run files, or clash with them.
RESERVED_IDS = frozenset({"run", "briefing", "glossary", OWNED_LIST})


def owned_files(folder: Path) -> set[str]:
    """Names of the files brief wrote in `folder` (empty when it wrote none)."""
    try:
        listed = (folder / OWNED_LIST).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return _adopted(folder)
    return {line for line in listed.splitlines() if line and "/" not in line}


def _adopted(folder: Path) -> set[str]:
    """Files of a folder written by brief before ownership lists existed: what its run.json names."""
    try:
        manifest = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        ids = [doc for row in manifest["inputs"] for doc in row["documents"]]
        if not {"mode", "inputs", "totals"} <= manifest.keys():
            return set()
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    names = {f"{i}{suffix}" for i in ids if isinstance(i, str) for suffix in (".md", ".json")}
    return names | set(RUN_FILES)


class OutputFolder:
    """One output folder for one run: which names are free, and the writes themselves."""

    def __init__(self, path: Path, inputs: Iterable[Path | str] = ()) -> None:
        self.path = path
        self._real_path = _real(path)
        # Only inputs inside this folder could be written over (a link here to one elsewhere is replaced,
        # never written through): a run's other inputs are not held.
        inside = self._real_path.rstrip(os.sep) + os.sep
        self._inputs = {real for real in map(_real, inputs) if real.startswith(inside)}
        self._owned = owned_files(path)
        self._written: set[str] = set()

    def check(self) -> None:
        """Before any request: the folder is writable and the run files are not someone else's."""
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"--out {self.path}: exists and is not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"--out {self.path}: cannot create it ({exc.strerror or exc})") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise OutputError(f"--out {self.path}: not writable (choose another --out)")
        self._real_path = _real(self.path)
        if self._owned and not (self.path / OWNED_LIST).exists():  # adopted from an older brief's run.json
            for name in sorted(self._owned):
                self._record_owned(name)
        for name in RUN_FILES:
            if not self.usable(name):
                raise OutputError(
                    f"--out {self.path}: {name} there was not written by brief (or is an input); "
                    "choose an empty or brief-made folder"
                )

    def usable(self, name: str) -> bool:
        """Whether brief may write `name`: not an input, and either absent or brief's own."""
        target = os.path.join(self.path, name)
        try:
            found = os.lstat(target)
        except (OSError, ValueError):
            found = None
        if (found is not None and stat.S_ISLNK(found.st_mode)) or "/" in name or name in (".", ".."):
            real = _real(target)
        else:  # not a link: where the folder really is, plus the name (what realpath would say, minus its lstats)
            real = os.path.join(self._real_path, name)
        if real in self._inputs:
            return False
        if name in self._owned or name in self._written or found is None:
            return True
        self._owned = owned_files(self.path)  # another brief process may have written it meanwhile
        return name in self._owned

    def id_is_free(self, doc_id: str) -> bool:
        return doc_id not in RESERVED_IDS and all(self.usable(f"{doc_id}{s}") for s in (".md", ".json"))

    def write(self, name: str, text: str) -> None:
        self.write_all([(name, text)])

    def write_pieces(self, name: str, pieces: Iterable[str]) -> None:
        """Write one file made piece by piece (the briefing of a large run), atomically."""
        self._claim([name])
        write_atomic_pieces(os.path.join(self.path, name), pieces)

    def write_all(self, files: Sequence[tuple[str, str]]) -> None:
        """Write files that belong together (an article's .json and .md), listing the new names in one append."""
        self._claim([name for name, _ in files])
        for name, text in files:
            write_atomic(os.path.join(self.path, name), text)

    def _claim(self, names: list[str]) -> None:
        for name in names:
            if not self.usable(name):  # checked when ids were claimed; a race with the user is still refused
                raise OutputError(f"{self.path / name}: exists and was not written by brief; not overwritten")
        new = [name for name in names if name not in self._owned and name not in self._written]
        if new:
            # Only the run files, which are written again: an article's names are written once per
            # run (its id is claimed once), so a run of any size holds no name per article here.
            self._written.update(name for name in new if name in RUN_FILES)
            self._record_owned(*new)  # listed before they exist: a crash never leaves an unlisted file of ours

    def _record_owned(self, *names: str) -> None:
        # One short append: atomic on local file systems, so two processes never lose a line.
        with open(self.path / OWNED_LIST, "a", encoding="utf-8") as handle:
            handle.write("".join(f"{name}\n" for name in names))


def _real(path: Path | str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return str(path)
