"""`brief clean` and `brief chunk` as other tools call them: JSON shapes, stdin, errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
runner = CliRunner()


def test_clean_json_lists_documents_with_the_documented_fields() -> None:
    result = runner.invoke(app, ["clean", "--json", str(SEEDS)])
    assert result.exit_code == 0, result.stderr
    documents = json.loads(result.stdout)
    assert len(documents) == 6  # five seeds, one of which holds two stories
    for doc in documents:
        assert {"id", "source", "text", "language", "script", "flags", "removed"} <= doc.keys()
        assert doc["language"] == "zh" and doc["script"] in ("traditional", "simplified", "mixed")
        assert isinstance(doc["flags"], list) and isinstance(doc["removed"], dict)
    assert [d["id"] for d in documents if d["id"].startswith("004")] == [
        "004_fcb75e84432dc768#1",
        "004_fcb75e84432dc768#2",
    ]


def test_clean_reads_stdin_and_prints_plain_text() -> None:
    result = runner.invoke(app, ["clean", "-"], input="首頁 > 新聞\n中國開源模型的下載量超過美國。\n".encode())
    assert result.exit_code == 0
    assert result.stdout == "中國開源模型的下載量超過美國。\n"


def test_chunk_json_fields_and_bound() -> None:
    result = runner.invoke(app, ["chunk", "--max-tokens", "120", "--json", str(SEEDS / "003_5cb4fd5a6fe695d5.txt")])
    assert result.exit_code == 0
    chunks = json.loads(result.stdout)
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    assert all(set(c) == {"document", "index", "text", "tokens"} for c in chunks)
    assert all(c["tokens"] <= 120 for c in chunks) and len(chunks) > 5


def test_bad_input_is_one_stderr_line_exit_1_and_good_input_still_printed(tmp_path: Path) -> None:
    (tmp_path / "a_bad.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "b_good.txt").write_text("中國開源模型的下載量超過美國。", encoding="utf-8")
    result = runner.invoke(app, ["clean", "--json", str(tmp_path)])
    assert result.exit_code == 1
    assert [d["id"] for d in json.loads(result.stdout)] == ["b_good"]
    lines = result.stderr.strip().splitlines()
    assert lines == [f"brief: {tmp_path / 'a_bad.txt'}: binary data, not a text article"]


def test_usage_error_exits_2() -> None:
    assert runner.invoke(app, ["chunk", "--max-tokens", "0", "-"]).exit_code == 2
    assert runner.invoke(app, ["clean", "--no-such-flag", "-"]).exit_code == 2
