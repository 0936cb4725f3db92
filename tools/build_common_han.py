"""Regenerate pipeline/data/common_han.txt: the most frequent Han characters, for mojibake detection.

The base is GB2312's level-1 block (一级汉字, the 3,755 characters of everyday use, read from the
codec itself); Traditional and regional variants of each are added with OpenCC so the list serves
text in any Chinese script. Text read with the wrong codec lands mostly outside this set.
Run from the repository root: python tools/build_common_han.py
"""

from __future__ import annotations

from pathlib import Path

import opencc

OUTPUT = Path("pipeline/data/common_han.txt")


def level_one_characters() -> list[str]:
    """GB2312 rows 16-55 (lead bytes 0xB0-0xD7): the level-1 characters, in pinyin order."""
    chars = []
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            try:
                chars.append(bytes([lead, trail]).decode("gb2312"))
            except UnicodeDecodeError:
                continue  # row 55 ends early
    return chars


def with_variants(chars: list[str]) -> list[str]:
    converters = [opencc.OpenCC(config) for config in ("s2t", "s2hk", "s2tw")]
    seen: dict[str, None] = dict.fromkeys(chars)
    for char in chars:
        for converter in converters:
            for variant in converter.convert(char):
                seen.setdefault(variant, None)
    return list(seen)


if __name__ == "__main__":
    chars = with_variants(level_one_characters())
    OUTPUT.write_text("".join(chars) + "\n", encoding="utf-8")
    print(f"wrote {len(chars)} characters to {OUTPUT}")
