"""The run's result store: held or spilled, results read back identical in id order; a damaged line is an error."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import pipeline.results
import pipeline.run_report
from pipeline.cli import app
from pipeline.output.render import render_article
from pipeline.records import ArticleResult, CheckFlag, DocumentMeta, GlossaryEntry, Usage
from pipeline.results import ResultStore
from tests.fakeserver import FakeOpenAI

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def result(doc_id: str, n: int) -> ArticleResult:
    term = GlossaryEntry("通義千問", "通义千问", "Tongyi Qianwen", "product", "tōng yì qiān wèn", ("rare rendering",))
    check = CheckFlag("number", "summary", "4321 billion", f"Revenue {n}.", "not in the source", ("200亿港元",))
    return ArticleResult(
        id=doc_id,
        source=f"news/{doc_id}.txt",
        mode="model",
        language="zh",
        script="traditional",
        title=f'Report {n}: "quoted", a line\u2028separator and 中文',
        summary=f"Summary {n}.\nSecond line with a tab\tand a backslash \\.",
        key_points=[f"Point {n}.", "Another point."],
        glossary=[term] * (n % 3),
        flags=["encoding:utf-8", f"glossary_dropped:{n}"],
        model="fake-qwen",
        prompt={"id": "map.v4", "hash": "abc"},
        usage=Usage(requests=n, cache_hits=1, prompt_tokens=10 * n, completion_tokens=n),
        dropped_terms=n,
        meta=DocumentMeta(url=f"https://example.com/{n}", site="Example") if n % 2 else DocumentMeta(),
        prompts=({"id": "reduce.v2", "hash": "def"},) if n % 2 else (),
        checks=(check,) if n % 2 else (),
    )


@pytest.mark.parametrize("spill_after", [100, 1])
def test_results_read_back_identical_in_id_order(spill_after: int) -> None:
    written = [result(doc_id, n) for n, doc_id in enumerate(["c", "a#2", "b", "a#1"])]
    store = ResultStore(written, spill_after=spill_after)
    assert store.spilled is (spill_after < len(written))
    back = list(store)
    assert [r.id for r in back] == ["a#1", "a#2", "b", "c"] == store.ids() and len(store) == 4
    assert list(store) == back  # read again: the same
    by_id = {r.id: r for r in written}
    for item in back:
        assert item == by_id[item.id]
        assert render_article(item) == render_article(by_id[item.id])  # the outputs are the same bytes
    assert store.get("b") == by_id["b"] and store.get("nope") is None and "c" in store and "x" not in store
    store.add(result("b", 7))  # a later result under the same id replaces the first
    assert store.get("b") == result("b", 7) and len(store) == 4
    assert store.damaged == 0 and store.errors == []
    store.close()


def test_the_spill_file_has_no_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    store = ResultStore([result(i, n) for n, i in enumerate("abc")], spill_after=0)
    assert store.spilled and len(store) == 3
    assert list(tmp_path.iterdir()) == []  # nothing to clean up after a kill
    store.close()


def test_a_damaged_line_is_a_recorded_error() -> None:
    store = ResultStore([result(doc_id, n) for n, doc_id in enumerate("abcd")], spill_after=0)
    handle: Any = store._file._file  # type: ignore[union-attr]  # the spill file itself, damaged in place (same lengths)
    handle.seek(0)
    lines = handle.read().splitlines(keepends=True)
    lines[1] = (b'{"id":"b","title":"torn\xff').ljust(len(lines[1]) - 1) + b"\n"
    lines[2] = lines[2].replace(b'"id":"c"', b'"id":"x"')  # valid JSON, but not the record written there
    handle.seek(0)
    handle.write(b"".join(lines))
    assert [r.id for r in store] == ["a", "d"]
    assert store.damaged == 2 and len(store.errors) == 2
    assert "the result of b cannot be read back" in store.errors[0] and "\n" not in store.errors[0]
    assert store.get("c") is None and store.damaged == 3
    store.close()


@pytest.mark.parametrize("spill_after", [100, 0])
def test_a_result_replaced_as_the_store_is_read_keeps_one_entry_its_final_version(spill_after: int) -> None:
    store = ResultStore([result(doc_id, n) for n, doc_id in enumerate("abc")], spill_after=spill_after)
    for doc_id in store.ids():  # as the run's end does: each article's final version replaces its first
        before = store.get(doc_id)
        assert before is not None
        store.add(replace(before, summary=before.summary + " (final)"))
    store.discard("b")
    assert [r.id for r in store] == ["a", "c"] and len(store) == 2 and "b" not in store
    assert all(r.summary.endswith("(final)") for r in store) and store.get("b") is None
    store.close()


def _outputs(folder: Path) -> dict[str, Any]:
    """Every file a run wrote; run.json without its clocks."""
    files: dict[str, Any] = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "run.json"}
    manifest = json.loads((folder / "run.json").read_text())
    manifest.pop("started")
    manifest["totals"].pop("elapsed_s")
    for row in manifest["inputs"]:
        row.pop("elapsed_s")
    manifest["client"] = {k: v for k, v in manifest["client"].items() if "_s" not in k}
    files["run.json"] = manifest
    return files


@pytest.mark.parametrize("offline", [True, False])
def test_a_run_whose_results_are_spilled_writes_the_same_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: bool
) -> None:
    inputs = tmp_path / "in"
    shutil.copytree(SEEDS, inputs)
    for n in range(4):  # the same story twice more, so that the run has groups and shared terms
        shutil.copy(SEEDS / "000_35dc785b65d2bec5.txt", inputs / f"copy{n}.txt")
        with (inputs / f"copy{n}.txt").open("a", encoding="utf-8") as handle:
            handle.write(f"\n第{n}段補充報道。\n")
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "BRIEF_MODEL", "BRIEF_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty.toml").touch()
    monkeypatch.setenv("BRIEF_CONFIG", str(tmp_path / "empty.toml"))
    with FakeOpenAI() as fake:
        endpoint = ["--offline"] if offline else ["--base-url", fake.base_url, "--model", "m"]

        def run(out: str) -> Path:
            args = ["summarize", str(inputs), "--out", str(tmp_path / out), "--no-cache", *endpoint]
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, result.output
            return tmp_path / out

        held = run("held")
        monkeypatch.setattr(pipeline.results, "SPILL_AFTER", 0)  # every result goes through the spill file
        monkeypatch.setattr(pipeline.run_report, "SPILL_AFTER", 0)  # and every finished run.json row
        spilled = run("spilled")
    assert _outputs(held) == _outputs(spilled)
    assert len(list(held.glob("*.md"))) >= 10 and "## Glossary" in (spilled / "briefing.md").read_text()
