"""Results spilled to the job folder read back identical, in id order; a damaged line is an error, not a crash."""

from __future__ import annotations

from pathlib import Path

from pipeline.batchjob.spill import RESULTS, ResultSpill
from pipeline.output.render import render_article
from pipeline.records import ArticleResult, CheckFlag, DocumentMeta, GlossaryEntry, Usage


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


def test_results_read_back_identical_in_id_order(tmp_path: Path) -> None:
    written = [result(doc_id, n) for n, doc_id in enumerate(["c", "a#2", "b", "a#1"])]
    spill = ResultSpill(tmp_path / RESULTS)
    for item in written:
        spill.add(item)
    back = list(spill)
    assert [r.id for r in back] == ["a#1", "a#2", "b", "c"] == spill.ids() and len(spill) == 4
    by_id = {r.id: r for r in written}
    for item in back:
        assert item == by_id[item.id]
        assert render_article(item) == render_article(by_id[item.id])  # the outputs are the same bytes
    assert spill.get("b") == by_id["b"] and spill.get("nope") is None
    assert spill.damaged == 0 and spill.errors == []
    spill.close()


def test_a_damaged_line_is_a_recorded_error(tmp_path: Path) -> None:
    spill = ResultSpill(tmp_path / RESULTS)
    for n, doc_id in enumerate(["a", "b", "c", "d"]):
        spill.add(result(doc_id, n))
    assert len(list(spill)) == 4  # read back once: everything is on disk
    lines = (tmp_path / RESULTS).read_bytes().splitlines(keepends=True)
    # Damaged in place (same lengths, so the offsets stay): a torn line, and a record under another id.
    lines[1] = (b'{"id":"b","title":"torn\xff').ljust(len(lines[1]) - 1) + b"\n"
    lines[2] = lines[2].replace(b'"id":"c"', b'"id":"x"')  # valid JSON, but not the record written there
    with (tmp_path / RESULTS).open("r+b") as handle:
        handle.write(b"".join(lines))
    assert [r.id for r in spill] == ["a", "d"]
    assert spill.damaged == 2 and len(spill.errors) == 2
    assert "the result of b cannot be read back" in spill.errors[0] and "\n" not in spill.errors[0]
    assert spill.get("c") is None and spill.damaged == 3
    spill.close()
