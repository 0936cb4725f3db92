"""What a run holds per article, compactly: claimed ids by digest, folder listings packed, output names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import digestset
from pipeline.app import IdAllocator
from pipeline.digestset import DigestSet
from pipeline.output.folder import OWNED_LIST, OutputFolder
from pipeline.sources import files


def test_a_digest_set_knows_every_string_added_across_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digestset, "_MIN_MERGE", 16)  # many merges into the sorted array
    added = [f"article-{n:05d}" for n in range(3000)]
    found = DigestSet()
    for n, text in enumerate(added):
        found.add(text)
        assert text in found and added[n // 2] in found
    found.add(added[7])  # again: not counted twice
    assert len(found) == 3000
    assert all(text in found for text in added)
    assert sum(f"other-{n}" in found for n in range(3000)) == 0
    assert 7 not in found  # type: ignore[operator]


@given(st.lists(st.text(min_size=1, max_size=12), max_size=60))
@settings(max_examples=200, deadline=None)
def test_ids_are_claimed_as_with_a_set(wanted: list[str]) -> None:
    used: set[str] = set()

    def claim(name: str) -> str:  # the rule IdAllocator keeps, over a plain set
        candidate, n = name, 1
        while candidate in used:
            n += 1
            candidate = f"{name}~{n}"
        used.add(candidate)
        return candidate

    ids = IdAllocator()
    assert [ids.claim(name) for name in wanted] == [claim(name) for name in wanted]


@pytest.mark.parametrize("spelling", ["news", "news/", "./news", "news//"])
def test_a_packed_listing_gives_the_paths_scandir_gives(tmp_path: Path, monkeypatch: Any, spelling: str) -> None:
    monkeypatch.chdir(tmp_path)
    for rel in ("b.txt", "a.md", "sub/c.html", "sub/deep/d.htm", "新闻/文章.txt", "z.pdf"):
        (tmp_path / "news" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "news" / rel).write_text("x", encoding="utf-8")
    expected = sorted(
        os.path.join(top, name) for top, _, names in os.walk(spelling) for name in names if not name.endswith(".pdf")
    )
    listing = files.folder_articles(spelling)
    assert list(listing) == expected and len(listing) == 5
    assert list(listing) == expected  # read again: the same


def test_an_empty_folder_is_one_clear_error_and_errors_keep_their_place(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    raws = list(files.file_inputs([str(tmp_path / "empty")], stdin=None))  # type: ignore[arg-type]
    assert len(raws) == 1 and raws[0].error is not None and "holds no" in str(raws[0].error)
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "a.txt").write_text("x")
    (tmp_path / "news" / "m.txt").symlink_to(tmp_path / "news" / "n.txt")
    (tmp_path / "news" / "n.txt").symlink_to(tmp_path / "news" / "m.txt")
    (tmp_path / "news" / "z.txt").write_text("x")
    names = [(Path(r.source).name, r.error is None) for r in files.file_inputs([str(tmp_path / "news")], stdin=None)]  # type: ignore[arg-type]
    assert names == [("a.txt", True), ("m.txt", False), ("n.txt", False), ("z.txt", True)]


def test_a_link_in_the_output_folder_to_an_input_elsewhere_is_never_written_through(tmp_path: Path) -> None:
    news, out = tmp_path / "news", tmp_path / "out"
    news.mkdir()
    out.mkdir()
    (news / "a.md").write_text("my article", encoding="utf-8")
    (out / OWNED_LIST).write_text("a.md\na.json\n", encoding="utf-8")  # brief's names once
    (out / "a.md").symlink_to(news / "a.md")  # then the user's link
    folder = OutputFolder(out, [str(news / "a.md")])
    folder.check()
    folder.write_all([("a.json", "{}"), ("a.md", "summary")])
    assert (news / "a.md").read_text(encoding="utf-8") == "my article"
    assert not (out / "a.md").is_symlink() and (out / "a.md").read_text(encoding="utf-8") == "summary"


def test_an_input_inside_the_output_folder_is_never_usable(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.md").write_text("my article", encoding="utf-8")
    (out / OWNED_LIST).write_text("a.md\n", encoding="utf-8")  # even when listed as brief's
    elsewhere = tmp_path / "b.md"
    elsewhere.write_text("x", encoding="utf-8")
    folder = OutputFolder(out, [str(out / "a.md"), str(elsewhere)])
    assert not folder.usable("a.md") and not folder.id_is_free("a")
    assert folder.usable("b.md")
