"""Gathering inputs: folders sorted and filtered, each unusable path reported with its reason."""

from __future__ import annotations

import io
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.paths import path_stem
from pipeline.sources.files import MAX_INPUT_BYTES, file_inputs


def read_inputs(paths: list[str], stdin: io.BytesIO) -> list[tuple[str, bytes | InputError | None]]:
    return [(raw.source, raw.error or raw.payload) for raw in file_inputs(paths, stdin)]


def reasons(inputs: list) -> dict[str, str]:
    return {Path(source).name: payload.reason for source, payload in inputs if isinstance(payload, InputError)}


def test_folder_is_read_recursively_in_sorted_order_articles_only(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.md").write_text("二")
    (tmp_path / "a.txt").write_text("一")
    (tmp_path / "c.html").write_text("三")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden.txt").write_text("x")
    inputs = read_inputs([str(tmp_path)], io.BytesIO())
    assert [Path(s).relative_to(tmp_path).as_posix() for s, _ in inputs] == ["a.txt", "b/2.md", "c.html"]
    assert [p for _, p in inputs] == ["一".encode(), "二".encode(), "三".encode()]


def test_stdin_and_files_keep_command_line_order(tmp_path: Path) -> None:
    article = tmp_path / "x.txt"
    article.write_text("文")
    inputs = read_inputs([str(article), "-"], io.BytesIO("標準輸入".encode()))
    assert inputs == [(str(article), "文".encode()), ("-", "標準輸入".encode())]


def test_bad_paths_become_errors_and_the_rest_is_read(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("好")
    (tmp_path / "huge.txt").write_bytes(b"a" * (MAX_INPUT_BYTES + 1))
    os.symlink("loop.txt", tmp_path / "loop.txt")
    (tmp_path / "empty_dir").mkdir()
    inputs = read_inputs([str(tmp_path), str(tmp_path / "missing.txt"), str(tmp_path / "empty_dir")], io.BytesIO())
    found = reasons(inputs)
    assert found["huge.txt"].startswith("too large")
    assert found["loop.txt"] == "symlink loop"
    assert found["missing.txt"] == "no such file"
    assert "no .txt" in found["empty_dir"]
    assert (str(tmp_path / "good.txt"), "好".encode()) in inputs


def test_oversized_stdin_is_refused() -> None:
    ((source, payload),) = read_inputs(["-"], io.BytesIO(b"a" * (MAX_INPUT_BYTES + 10)))
    assert source == "-" and isinstance(payload, InputError) and "too large" in payload.reason


PATH_PIECES = ["a", "b", ".", "..", "/", "/.", "#", " ", "名", "x.y", "\\"]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(PATH_PIECES), max_size=8).map("".join))
def test_file_ids_are_path_stems_without_building_paths(source: str) -> None:
    # file_id avoids pathlib (each Path interns its parts for the whole run); the rule must not change.
    assert path_stem(source) == Path(source).stem
