"""Terminal control sequences and control characters never reach the cleaned text; each is counted."""

from __future__ import annotations

import unicodedata

import pytest

from pipeline.ingest.documents import ingest

STORY = "中國開源模型的下載量已經超過美國，成為全球第一。"


def controls_in(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) == "Cc" and c not in "\n\t"]


@pytest.mark.parametrize(
    ("dirty", "count"),
    [
        ("\x1b[31m中國開源模型\x1b[0m的下載量已經超過美國，成為全球第一。", 2),  # colours (CSI)
        ("\x1b[2J\x1b[1;1H中國開源模型的下載量已經超過美國，成為全球第一。", 2),  # clear screen, cursor home
        ("\x1b]0;pwned\x07中國開源模型的下載量已經超過美國，成為全球第一。", 1),  # window title (OSC … BEL)
        ("\x1b]8;;https://evil.example\x1b\\中國開源模型\x1b]8;;\x1b\\的下載量已經超過美國，成為全球第一。", 2),  # link
        ("\x9b31m中國開源模型的下載量已經超過美國，成為全球第一。\x9b0m", 2),  # 8-bit CSI
        ("\x1bP1$r0m\x1b\\中國開源模型的下載量已經超過美國，成為全球第一。", 1),  # DCS string
        ("中國開源模型的\x08下載量\x07已經超過美國，\x0b成為全球第一\x7f。\x85", 5),  # lone C0/C1 characters
        ("\x1b(B中國開源模型的下載量已經超過美國，成為全球第一。\x1b", 2),  # charset switch, lone ESC
        ("\x1b]2;中國開源模型的下載量已經超過美國，成為全球第一。", 1),  # OSC cut short: its text stays
    ],
)
def test_control_sequences_are_stripped_and_counted(dirty: str, count: int) -> None:
    (doc,) = ingest(f"美媒：中國AI模型下載量居首\n{dirty}".encode(), "p.txt")
    assert doc.text == f"美媒：中國AI模型下載量居首\n{STORY}"
    assert doc.removed == {"control": count}
    assert f"removed:control:{count}" in doc.flags
    assert controls_in(doc.text) == [] and "\x1b" not in doc.simplified


def test_tabs_and_line_breaks_stay() -> None:
    (doc,) = ingest(f"美媒：中國AI模型下載量居首\n{STORY}\tAI\n{STORY}".encode(), "p.txt")
    assert doc.text.split("\n") == ["美媒：中國AI模型下載量居首", f"{STORY}\tAI", STORY]
    assert "control" not in doc.removed


def test_a_line_of_escape_codes_only_is_counted_as_control_not_as_emptied() -> None:
    (doc,) = ingest(f"\x1b[0m\x1b[?25l\n{STORY}".encode(), "p.txt")
    assert doc.text == STORY
    assert doc.removed == {"control": 2}
