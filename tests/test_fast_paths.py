"""Fast paths give what the plain code gave: output files, JSON bytes, cache keys, parsed data files."""

from __future__ import annotations

import gzip
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import dictionary, fsutil
from pipeline.cache import cache_key
from pipeline.dictionary import Dictionary
from pipeline.ingest.tokens import _parse_line_by_line, parse_bpe_ranks
from pipeline.jsonbytes import canonical, compact, indented
from pipeline.output.folder import OWNED_LIST, OutputFolder
from pipeline.output.markdown import code, inline
from pipeline.output.render import render_article
from pipeline.records import ArticleResult, CheckFlag, DocumentMeta, GlossaryEntry, Usage
from pipeline.terminal import printable

# -- atomic writes -----------------------------------------------------------------------------------


def test_a_written_file_is_private_and_no_temporary_is_left(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deep" / "a.md"  # folders made on the way
    assert fsutil.write_atomic(target, "第一\n") is True
    assert target.read_text(encoding="utf-8") == "第一\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # as mkstemp made them
    assert fsutil.write_atomic(target, "第一\n") is False  # unchanged: not rewritten
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.md"]


def test_a_temporary_name_already_taken_falls_back_to_a_random_one(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    taken = tmp_path / f".a.json.{os.getpid()}-{next(fsutil._TEMP_NUMBERS) + 1}.tmp"
    taken.write_text("left by a killed process")
    fsutil.write_atomic(target, b"{}")
    assert target.read_bytes() == b"{}" and taken.read_text() == "left by a killed process"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.json", taken.name])


def test_a_relative_path_is_written_in_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fsutil.write_atomic("plain.txt", "x")
    assert (tmp_path / "plain.txt").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["plain.txt"]


# -- the output folder -------------------------------------------------------------------------------


def test_an_article_s_two_files_are_listed_in_one_append_before_they_exist(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path / "out")
    folder.check()
    folder.write_all([("a.json", "{}"), ("a.md", "# A\n")])
    folder.write_all([("a.json", "{}"), ("a.md", "# A again\n")])  # already listed: not again
    assert (tmp_path / "out" / OWNED_LIST).read_text() == "a.json\na.md\n"
    assert (tmp_path / "out" / "a.md").read_text() == "# A again\n"


def test_a_link_in_the_folder_to_an_input_is_never_usable(tmp_path: Path) -> None:
    source = tmp_path / "in" / "story.txt"
    source.parent.mkdir()
    source.write_text("原文")
    out = tmp_path / "out"
    out.mkdir()
    (out / "story.md").symlink_to(source)
    folder = OutputFolder(out, [source])
    folder.check()
    assert not folder.usable("story.md") and not folder.id_is_free("story")
    assert folder.usable("other.md")
    linked = tmp_path / "linked-out"
    linked.symlink_to(source.parent, target_is_directory=True)  # --out is the input folder, by another name
    assert not OutputFolder(linked, [source]).usable("story.txt")


# -- JSON ----------------------------------------------------------------------------------------------


def article(**changes: Any) -> ArticleResult:
    base = ArticleResult(
        "a#1",
        "in/a.txt",
        "model",
        "zh",
        "traditional",
        'Title "quoted" \\ with \x1b escape and \u2028 separator',
        "Summary.\n\tTabbed 中文 😀",
        ["one", "two"],
        [GlossaryEntry("通義千問", "通义千问", "Tongyi Qianwen", "product", "Tōng yì", ("w",))],
        flags=["opencc:t2s"],
        model="m",
        prompt={"id": "map.v4", "hash": "abc"},
        usage=Usage(2, 1, 300, 40),
        meta=DocumentMeta(title="T", url="https://example.com/a"),
        prompts=({"id": "repair.v1", "hash": "x"},),
        checks=(CheckFlag("number", "summary", "200", "It is 200.", "no such figure", ("20",)),),
    )
    return replace(base, **changes)


@pytest.mark.parametrize(
    "result",
    [
        article(),
        article(meta=DocumentMeta(), prompts=(), checks=(), glossary=[], key_points=[]),
        article(usage=Usage(1, 0, 1e-7, 2**70)),  # not what a server sends: json writes these
        article(title="lone \ud800 surrogate"),
    ],
)
def test_article_json_is_byte_for_byte_what_json_writes(result: ArticleResult) -> None:
    assert render_article(result)[0] == json.dumps(result.to_json(), ensure_ascii=False, indent=2) + "\n"


leaves = st.one_of(st.text(max_size=6), st.integers(-(2**70), 2**70), st.floats(), st.booleans(), st.none())
trees = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
)


@settings(max_examples=300, deadline=None)
@given(trees)
def test_json_bytes_are_json_s_own(data: Any) -> None:
    try:
        expected: Any = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    except ValueError as exc:
        expected = type(exc)
    try:
        found: Any = canonical(data)
    except ValueError as exc:
        found = type(exc)
    assert found == expected
    assert indented(data) == json.dumps(data, ensure_ascii=False, indent=2)
    try:
        in_order: Any = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    except ValueError as exc:
        in_order = type(exc)
    try:
        found = compact(data)
    except ValueError as exc:
        found = type(exc)
    assert found == in_order


def test_a_known_key_has_not_moved() -> None:
    # Keys written by earlier versions must still be found: this one was computed with json alone.
    parts = {"model": "m", "prompt": ["map.v4", "h"], "messages": [{"role": "user", "content": "長文 ok"}], "t": 0.2}
    assert cache_key(parts) == "97cfe386874f7bc6d9b8afc78678290909672c988274ef16bc18534048c53b4c"


# -- Markdown and terminal text ----------------------------------------------------------------------


MARKDOWN_ISH = list("ab #>+-=1.)\\`*_[]<>|&~\n\t\x1b[31m\x07\x9b\x85\x00\x7f中")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(MARKDOWN_ISH), max_size=40))
def test_inline_text_is_one_inert_line(text: str) -> None:
    line = inline(text)
    assert "\n" not in line and printable(line) == line
    at, plain = 0, []
    while at < len(line):  # read it back: every special character comes escaped
        if line[at] == "\\":
            plain.append(line[at + 1])
            at += 2
        else:
            assert line[at] not in "`*_[]<>|&~", line
            plain.append(line[at])
            at += 1
    assert "".join(plain) == " ".join(printable(text).split())
    assert not line.startswith(("#", ">", "+", "-", "="))
    fenced = code(text)
    assert fenced.startswith("`") and fenced.endswith("`")


def test_printable_returns_clean_text_unchanged_and_strips_escapes() -> None:
    clean = "Plain text, 中文, tabs\tand\nlines"
    assert printable(clean) is clean
    assert printable("a\x1b[31mred\x1b[0m\x07b\x9bc") == "aredbc"


# -- data files ---------------------------------------------------------------------------------------


def test_cedict_from_a_crlf_gzip_file_matches_reading_it_as_text(tmp_path: Path) -> None:
    lines = [
        "# CC-CEDICT",
        "通義千問 通义千问 [Tong1 yi4 Qian1 wen4] /Tongyi Qianwen (LLM)/",
        "號 号 [hao4] /number/",
        "號 号 [hao2] /to howl/",
        "号 号 [hao4] /variant/",
        "broken-line",
        "",
    ]
    path = tmp_path / "dict.txt.gz"
    path.write_bytes(gzip.compress("\r\n".join(lines).encode("utf-8")))
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        as_text = Dictionary(handle.read().splitlines())
    loaded = Dictionary.from_path(path)
    assert (loaded._lines, loaded._index, loaded._proper) == (as_text._lines, as_text._index, as_text._proper)
    assert loaded._index["号"] == [1, 2, 3] and loaded.is_proper("通義千問") and len(loaded) == 4
    assert loaded.pinyin("号") == as_text.pinyin("号")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_cedict_read_in_pieces_gives_the_whole_file_s_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gz: bool
) -> None:
    # Pieces of 7 bytes cut through \r\n pairs, three-byte characters and the rarer line breaks.
    monkeypatch.setattr(dictionary, "_PIECE", 7)
    text = "# 香港\r\n號 号 [hao4] /number/\r\n\r\nx\ry\u2028z\x85w\n末行 no newline"
    data = text.encode("utf-8")
    path = tmp_path / ("dict.txt.gz" if gz else "dict.txt")
    path.write_bytes(gzip.compress(data) + gzip.compress(data) if gz else data)  # two members, as gzip allows
    expected = (text + text if gz else text).splitlines()
    assert list(dictionary._file_lines(path)) == expected


def test_a_cut_cedict_gzip_fails_like_gzip_does(tmp_path: Path) -> None:
    path = tmp_path / "dict.txt.gz"
    path.write_bytes(gzip.compress("號 号 [hao4] /number/\n".encode() * 5000)[:-12])
    with pytest.raises(EOFError):
        gzip.decompress(path.read_bytes())
    with pytest.raises(EOFError):
        list(dictionary._file_lines(path))


def test_bpe_ranks_parse_like_the_line_by_line_reader() -> None:
    contents = b"IQ== 0\nIg== 1\n\nIw== 2\n"
    assert parse_bpe_ranks(contents) == _parse_line_by_line(contents) == {b"!": 0, b'"': 1, b"#": 2}
    for broken in (b"IQ== 0\nIg==\n", b"IQ== 0 1\nIg==\n", b"  \nIQ== 0\n"):
        with pytest.raises(ValueError):
            parse_bpe_ranks(broken)


# -- the run-level name check ------------------------------------------------------------------------


def test_the_run_name_check_scales_with_articles_times_terms() -> None:
    """400 articles and 400 run names: each name's readings looked up once, not once per article."""
    import time

    from pipeline.checks import ArticleProse, check_run_names

    surnames, givens = "趙錢孫李周吳鄭王馮陳", "明華強偉芳娜敏靜麗軍"
    names = [(s + g + h, f"Name{i}", "person") for i, (s, g, h) in enumerate(
        (s, g, h) for s in surnames for g in givens for h in "一二三四"
    )][:400]  # fmt: skip
    readings = {c: f"x{ord(c) % 97}" for c, *_ in names for c in c}
    lookups = 0

    def pinyin_of(term: str) -> str:
        nonlocal lookups
        lookups += 1
        return " ".join(readings.get(c, "x") for c in term)

    articles = [
        ArticleProse(f"a{n}", {"summary": f"Name{n} met Name{(n + 1) % 400} today.", "key_points": ["A point."]},
                     [names[n]])
        for n in range(400)
    ]  # fmt: skip
    started = time.process_time()
    found = check_run_names(articles, names, pinyin_of=pinyin_of)
    assert time.process_time() - started < 5  # was minutes: every article against every name, readings each time
    assert found == {} and lookups <= 2 * len(names)


def test_the_shipped_encoding_parses_the_same_either_way() -> None:
    from importlib import resources

    from pipeline.ingest.tokens import ENCODING_NAME, _published_ranks

    contents = resources.files("pipeline").joinpath("data", f"{ENCODING_NAME}.tiktoken").read_bytes()
    assert _published_ranks(contents) == parse_bpe_ranks(contents)


def test_a_file_written_in_pieces_is_replaced_whole_or_left_alone(tmp_path: Path) -> None:
    from pipeline.fsutil import write_atomic_pieces

    target = tmp_path / "briefing.md"
    assert write_atomic_pieces(target, ["# Briefing\n", "", "中文 section\n"]) is True
    assert target.read_text(encoding="utf-8") == "# Briefing\n中文 section\n"
    inode = target.stat().st_ino
    assert write_atomic_pieces(target, ["# Briefing\n中文", " section\n"]) is False  # same bytes: left alone
    assert target.stat().st_ino == inode
    assert write_atomic_pieces(target, ["changed\n"]) is True and target.read_text() == "changed\n"

    def failing() -> Iterator[str]:
        yield "half of a new text\n"
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomic_pieces(target, failing())
    assert target.read_text() == "changed\n" and [p.name for p in tmp_path.iterdir()] == ["briefing.md"]
