"""Freed memory goes back to the system during long loops (glibc's malloc_trim), counted by GiveBack."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pipeline.memory
from pipeline.batchjob import import_results, prepare
from pipeline.cli import app
from pipeline.memory import GiveBack, give_back
from tests.fakebatch import toy_responder, write_results
from tests.test_batch_toy import ToyEngine

ROOT = Path(__file__).resolve().parent.parent


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every give_back() call, recorded instead of made."""
    calls: list[int] = []
    monkeypatch.setattr(pipeline.memory, "give_back", lambda: calls.append(1) or True)
    return calls


@pytest.mark.skipif(pipeline.memory._trim() is None, reason="no malloc_trim in this C library")
def test_freed_holes_in_the_heap_go_back_to_the_system() -> None:
    # 2 KB blocks come from malloc (over pymalloc's 512 bytes); keeping every 16th pins the heap's
    # top, so without a trim the freed 15/16 stay resident.
    blocks = [bytes(2048) + i.to_bytes(4, "little") for i in range(40_000)]
    kept = blocks[::16]
    del blocks
    before = rss_kb()
    assert give_back() is True
    after = rss_kb()
    assert before - after > 20_000  # of the ~75 MB freed, most is handed back
    assert len(kept) == 2_500


def test_give_back_counts_and_trims_every_nth(trims: list[int]) -> None:
    counter = GiveBack(every=3)
    for _ in range(7):
        counter.tick()
    assert (len(trims), counter.trims) == (2, 2)


def test_a_run_gives_back_memory_as_articles_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trims: list[int]
) -> None:
    monkeypatch.setattr(pipeline.memory, "EVERY", 1)
    (tmp_path / "config.toml").touch()
    monkeypatch.setenv("BRIEF_CONFIG", str(tmp_path / "config.toml"))
    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")
    articles = len(list((tmp_path / "seeds").glob("*.txt")))
    done = CliRunner().invoke(app, ["summarize", str(tmp_path / "seeds"), "--offline", "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert len(trims) >= 2 * articles  # each input as it finishes, each article as it is written


def test_an_import_gives_back_memory_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trims: list[int]
) -> None:
    monkeypatch.setattr(pipeline.memory, "EVERY", 2)
    job_dir, engine = tmp_path / "job", ToyEngine(tmp_path, [1, 1, 1, 1])
    asyncio.run(prepare(engine, job_dir))
    results = tmp_path / "results.jsonl"
    write_results(job_dir / "requests-map.jsonl", results, toy_responder, shape="vllm")
    report = asyncio.run(import_results(job_dir, results, engine))
    assert report.accepted == 4
    assert len(trims) == 2
