"""OpenCC conversions with the library's dictionaries and rules, several times faster.

opencc-python-reimplemented cuts the text at punctuation, then converts each segment with the
configuration's dictionary groups in turn, replacing the longest key found anywhere first. We
load its dictionaries and apply the same rule ourselves (tests hold us to its output), so that
- a key is looked for only at characters some key starts with, in the lengths keys have there,
  instead of every length at every position;
- a segment holding no character that any entry of a group would change is left as it is (most
  of a Simplified text under t2s, most of any text under the Hong Kong and Taiwan variant groups);
- a group's result for a segment is cached and shared between configurations: hk2s and tw2s end
  with the t2s group, so after t2s they cost little more than their small variant groups.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from typing import Any

# Converted segments kept per group; the cache starts over when full. An article's segments meet
# the same group two or three times (t2s, then its region's config): a few thousand entries keep
# all of that (~1 MB a group), where 65,536 grew by ~200 bytes per article for the first ~3,000.
_CACHE_SEGMENTS = 1 << 12


class _Dictionary:
    """One dictionary of a group, indexed for finding every key occurring in a segment."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping  # the library's own; a value may list candidates: "乾 幹"
        self.single = True
        lengths: dict[str, set[int]] = {}
        for key in mapping:
            if len(key) > 1:
                self.single = False
            lengths.setdefault(key[0], set()).add(len(key))
        # the key lengths starting with each character, longest first
        self.lengths = {char: sorted(found, reverse=True) for char, found in lengths.items()}

    def value(self, key: str) -> str:
        value = self.mapping[key]
        return value.split(" ")[0] if " " in value else value  # the library takes the first candidate

    def occurrences(self, text: str) -> list[tuple[int, int]]:
        """(-length, start) of every key occurring in `text`."""
        found: list[tuple[int, int]] = []
        mapping, lengths, size = self.mapping, self.lengths, len(text)
        for start, char in enumerate(text):
            for length in lengths.get(char, ()):
                if start + length <= size and text[start : start + length] in mapping:
                    found.append((-length, start))
        return found


def _apply(dictionaries: list[_Dictionary], text: str) -> str:
    """A group's conversion of one segment, as the library's parse tree does it.

    The library picks, in each unmatched stretch, the longest key occurrence (the leftmost of equal
    length), replaces it and goes on in the stretches left and right of it; stretches no key of
    the first dictionary matches go to the next one. Taking all occurrences longest first, leftmost
    first, and keeping those that overlap nothing kept, picks the same ones.
    """
    if not text or not dictionaries:
        return text
    first, rest = dictionaries[0], dictionaries[1:]
    if first.single:
        if not rest:
            return "".join([first.value(char) if char in first.mapping else char for char in text])
        picks = {i: (1, first.value(char)) for i, char in enumerate(text) if char in first.mapping}
    else:
        picks = {}
        covered = [False] * len(text)
        for negative_length, start in sorted(first.occurrences(text)):
            end = start - negative_length
            if not any(covered[start:end]):
                covered[start:end] = [True] * (end - start)
                picks[start] = (end - start, first.value(text[start:end]))
    if not picks:
        return _apply(rest, text)
    out: list[str] = []
    gap = 0
    for start in sorted(picks):
        length, value = picks[start]
        out.append(_apply(rest, text[gap:start]))
        out.append(value)
        gap = start + length
    out.append(_apply(rest, text[gap:]))
    return "".join(out)


@dataclass
class _Group:
    """One dictionary group of a configuration (phrases, then characters)."""

    dictionaries: list[_Dictionary]
    changes: frozenset[str]  # every character that some entry of the group would change
    cache: dict[str, str] = field(default_factory=dict)

    def convert(self, segment: str) -> str:
        if self.changes.isdisjoint(segment):
            return segment
        converted = self.cache.get(segment)
        if converted is None:
            converted = _apply(self.dictionaries, segment)
            if len(self.cache) >= _CACHE_SEGMENTS:
                self.cache.clear()
            self.cache[segment] = converted
        return converted


def _changed_characters(dictionaries: list[_Dictionary]) -> frozenset[str]:
    """Characters an entry maps to something else (all of a key whose value differs in length)."""
    changes: set[str] = set()
    for dictionary in dictionaries:
        for key, value in dictionary.mapping.items():
            if " " in value:
                value = value.split(" ")[0]
            if value == key:
                continue
            if len(value) != len(key):
                changes.update(key)
            elif len(key) == 1:
                changes.add(key)
            else:
                for a, b in zip(key, value, strict=True):
                    if a != b:
                        changes.add(a)
    return frozenset(changes)


_GROUPS: dict[tuple[str, ...], _Group] = {}


@functools.cache
def _engine(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


@functools.cache
def _chain(config: str) -> tuple[_Group, ...] | None:
    """The configuration's groups, or None when the installed OpenCC does not expose them."""
    engine = _engine(config)
    files = getattr(engine, "_dict_chain", None)
    data = getattr(engine, "_dict_chain_data", None)
    if not (isinstance(files, list) and isinstance(data, list)):
        return None
    groups: list[_Group] = []
    for group_files, group_data in zip(files, data, strict=True):
        names = tuple(os.path.basename(f) for f in (group_files if isinstance(group_files, list) else [group_files]))
        if names not in _GROUPS:
            mappings = [mapping for _, _, mapping in group_data]
            if any(not value.split(" ")[0] for mapping in mappings for value in mapping.values()):
                return None  # the library treats an empty value as no match: leave that to it
            dictionaries = [_Dictionary(mapping) for mapping in mappings]
            _GROUPS[names] = _Group(dictionaries, _changed_characters(dictionaries))
        groups.append(_GROUPS[names])
    return tuple(groups)


@functools.cache
def _cutter(pattern: str) -> re.Pattern[str]:
    """The library's cut pattern with its one-character alternatives made a character class.

    (\\s+|-|,|\\.|…|】) becomes (\\s+|[-,.…】]): the same cuts, found several times faster. A pattern
    of any other shape is used as it is.
    """
    alternatives = pattern[1:-1].split("|") if pattern[:1] == "(" and pattern[-1:] == ")" else []
    marks = [alt[1:] if alt.startswith("\\") else alt for alt in alternatives[1:]]
    if alternatives[:1] != [r"\s+"] or any(len(mark) != 1 for mark in marks):
        return re.compile(pattern)
    return re.compile(r"(\s+|[" + re.escape("".join(marks)) + "])")


def convert(text: str, config: str) -> str:
    """`text` converted with the OpenCC configuration `config` (t2s, s2t, hk2s, tw2s…)."""
    chain = _chain(config)
    engine = _engine(config)
    if chain is None:
        return str(engine.convert(text))
    parts = _cutter(engine.split_chars_re.pattern).split(text)
    for index in range(0, len(parts), 2):  # odd indexes hold the punctuation cut at
        for group in chain:
            parts[index] = group.convert(parts[index])
    return "".join(parts)


def clear_caches() -> None:
    """Forget converted segments (for timing a cold run)."""
    for group in _GROUPS.values():
        group.cache.clear()
