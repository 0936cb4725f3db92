"""Blocking work stays off the event loop: folder listing, cache open, imports, SDK build, ingest, checks."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from pipeline import app, responsive
from pipeline.config import Settings
from pipeline.model.backends import Deadlines
from pipeline.model.backends.openai_http import OpenAIHTTPBackend
from pipeline.session import open_session
from pipeline.sources import files

ROOT = Path(__file__).resolve().parent.parent


def _recording(calls: list[int], real: Any) -> Any:
    def record(*args: Any, **kwargs: Any) -> Any:
        calls.append(threading.get_ident())
        return real(*args, **kwargs) if real is not None else None

    return record


def test_the_folder_listing_of_prepare_run_is_not_on_the_loop_thread(tmp_path: Path, monkeypatch: Any) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("第一篇文章。", encoding="utf-8")
    calls: list[int] = []
    monkeypatch.setattr(files, "folder_articles", _recording(calls, files.folder_articles))

    async def main() -> int:
        settings = Settings(offline=True, out_dir=tmp_path / "out")
        prepared = await app.prepare_run(settings, [str(folder)], io.BytesIO(), tmp_path / "out", lambda _: None)
        await prepared.session.close()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert calls, "prepare_run lists the input folder (to keep outputs off it)"
    assert loop_thread not in calls


def test_the_seen_store_closes_off_the_loop_thread(tmp_path: Path, monkeypatch: Any) -> None:
    from pipeline.sources.seen import SeenStore

    closed: list[int] = []
    monkeypatch.setattr(SeenStore, "close", _recording(closed, SeenStore.close))
    (tmp_path / "a.txt").write_text("第一篇文章。", encoding="utf-8")

    async def main() -> int:
        settings = Settings(offline=True, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
        out = tmp_path / "out"
        prepared = await app.prepare_run(settings, [str(tmp_path / "a.txt")], io.BytesIO(), out, lambda _: None)
        assert prepared.seen is not None
        await prepared.run()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert len(closed) == 1 and loop_thread not in closed


def test_open_session_opens_the_cache_in_a_worker_thread(tmp_path: Path, monkeypatch: Any) -> None:
    from pipeline.cache import Cache

    opened: list[int] = []
    monkeypatch.setattr(Cache, "check_writable", _recording(opened, None))
    settings = Settings(base_url="http://127.0.0.1:9/v1", model="m", cache_dir=tmp_path / "cache", json_mode="object")

    async def main() -> int:
        session = await open_session(settings, probe=False)
        await session.close()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert opened and loop_thread not in opened


def test_one_time_loads_run_once_in_a_thread_and_never_on_a_cached_re_run(tmp_path: Path, monkeypatch: Any) -> None:
    """OpenCC's tables, the tokenizer and the checks' patterns load in a worker thread before the first
    article is ingested; a re-run whose every article is cached never loads them."""
    from typer.testing import CliRunner

    from pipeline.cli import app as cli
    from pipeline.ingest import warmup
    from tests.fakeserver import FakeOpenAI

    events: list[tuple[str, int]] = []

    def warm() -> None:
        events.append(("warm", threading.get_ident()))

    def ingest(*args: Any) -> Any:
        events.append(("ingest", threading.get_ident()))
        return real_ingest(*args)

    real_ingest = app.ingest_input
    monkeypatch.setattr(warmup, "warm_up_model_path", warm)
    monkeypatch.setattr(app, "ingest_input", ingest)
    loop_threads: list[int] = []
    real_run = asyncio.run
    monkeypatch.setattr(asyncio, "run", lambda coro: real_run(_noting_thread(coro, loop_threads)))
    for n in range(3):
        (tmp_path / f"a{n}.txt").write_text(
            f"香港特區政府今日公布，第{n}季度本地生產總值按年增長1.8%。", encoding="utf-8"
        )
    (tmp_path / "empty.toml").touch()
    monkeypatch.setenv("BRIEF_CONFIG", str(tmp_path / "empty.toml"))
    args = ["summarize", *(str(tmp_path / f"a{n}.txt") for n in range(3)), "--out", str(tmp_path / "out")]
    with FakeOpenAI() as fake:
        args += ["--base-url", fake.base_url, "--model", "m", "--cache-dir", str(tmp_path / "cache")]
        first = CliRunner().invoke(cli, args)
        kinds = [kind for kind, _ in events]
        warm_threads = {t for kind, t in events if kind == "warm"}
        events.clear()
        again = CliRunner().invoke(cli, args)
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert kinds == ["warm", "ingest", "ingest", "ingest"]  # once, before the first article
    assert events == []  # every article came from the results cache: nothing loaded, nothing ingested
    assert loop_threads and not warm_threads & set(loop_threads)  # loaded in a worker thread


async def _noting_thread(coro: Any, threads: list[int]) -> Any:
    threads.append(threading.get_ident())
    return await coro


def test_the_sdk_is_built_once_in_a_worker_thread_for_concurrent_first_requests(monkeypatch: Any) -> None:
    backend = OpenAIHTTPBackend("http://127.0.0.1:9/v1", None, Deadlines(total=5, first_token=5, idle=5))
    built: list[int] = []
    sdk = object()

    def build() -> Any:
        built.append(threading.get_ident())
        return sdk

    monkeypatch.setattr(backend, "_build_sdk", build)

    async def main() -> tuple[int, list[Any]]:
        got = await asyncio.gather(*(backend.ready() for _ in range(8)))
        return threading.get_ident(), list(got)

    loop_thread, got = asyncio.run(main())
    assert built and len(built) == 1 and built[0] != loop_thread
    assert all(s is sdk for s in got)


def test_a_large_input_is_ingested_and_chunked_off_the_loop_a_small_one_on_it(tmp_path: Path, monkeypatch: Any) -> None:
    """A real-size page's cleaning (7-20 ms) and chunking (4-7 ms) were one stall each on the loop;
    a short wire item's (~1 ms each) costs less than the hop to a thread and stays."""
    from typer.testing import CliRunner

    from pipeline.cli import app as cli
    from pipeline.model import summarize
    from tests.fakeserver import FakeOpenAI

    where: dict[str, set[int]] = {"ingest": set(), "chunk": set()}

    def ingest(raw: Any, doc_id: str) -> Any:
        where["ingest"].add(threading.get_ident())
        return real_ingest(raw, doc_id)

    def chunk(text: str, *args: Any) -> Any:
        where["chunk"].add(threading.get_ident())
        return real_chunk(text, *args)

    real_ingest, real_chunk = app.ingest_input, summarize.split_balanced
    monkeypatch.setattr(app, "ingest_input", ingest)
    monkeypatch.setattr(summarize, "split_balanced", chunk)
    loop_threads: list[int] = []
    real_run = asyncio.run
    monkeypatch.setattr(asyncio, "run", lambda coro: real_run(_noting_thread(coro, loop_threads)))
    (tmp_path / "empty.toml").touch()
    monkeypatch.setenv("BRIEF_CONFIG", str(tmp_path / "empty.toml"))
    sentence = "香港特區政府今日公布，第三季度本地生產總值按年增長百分之一點八，出口表現好於預期。"
    for name, count in (("short", 2), ("long", 40)):
        lines = [f"{name}{n}：{sentence}" for n in range(count)]
        (tmp_path / f"{name}.txt").write_text("\n\n".join(lines), encoding="utf-8")
    for name in ("short", "long"):
        args = ["summarize", str(tmp_path / f"{name}.txt"), "--out", str(tmp_path / f"out-{name}"), "--no-cache"]
        with FakeOpenAI() as fake:
            done = CliRunner().invoke(cli, [*args, "--base-url", fake.base_url, "--model", "m"])
        assert done.exit_code == 0, done.output
        assert len(loop_threads) == 1 and len(where["ingest"]) == len(where["chunk"]) == 1
        on_loop = [loop_threads[0] in where[step] for step in ("ingest", "chunk")]
        assert on_loop == ([True, True] if name == "short" else [False, False]), (name, where, loop_threads)
        loop_threads.clear()
        where = {"ingest": set(), "chunk": set()}


def test_inputs_are_read_off_the_loop_while_worker_jobs_run_and_on_it_otherwise() -> None:
    readers: list[int] = []

    def listing(count: int) -> Any:
        for n in range(count):
            readers.append(threading.get_ident())
            yield n

    async def read_all(while_busy: bool) -> tuple[int, list[int]]:
        release = threading.Event()
        busy = asyncio.ensure_future(responsive.load_in_thread(lambda: release.wait(5))) if while_busy else None
        await asyncio.sleep(0.01)
        try:
            got = [item async for item in responsive.iterate_off_loop(listing(40), batch=16)]
        finally:
            release.set()
            if busy is not None:
                await busy
        return threading.get_ident(), got

    for while_busy in (True, False):
        readers.clear()
        loop_thread, got = asyncio.run(read_all(while_busy))
        assert got == list(range(40))  # every item, in order, across batches
        assert (loop_thread in readers) is not while_busy, (while_busy, set(readers), loop_thread)


def test_stdin_is_never_read_in_a_worker_thread(tmp_path: Path) -> None:
    """From a terminal the read blocks until EOF: in a thread it would hold the process open after Ctrl-C."""
    from pipeline.sources import WebOptions, open_inputs

    readers: list[int] = []

    class Stdin(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            readers.append(threading.get_ident())
            return super().read(size)

    (tmp_path / "a.txt").write_text("第一篇文章。", encoding="utf-8")

    async def main() -> tuple[int, list[str]]:
        release = threading.Event()
        busy = asyncio.ensure_future(responsive.load_in_thread(lambda: release.wait(5)))  # worker jobs under way
        await asyncio.sleep(0.01)
        try:
            stream = open_inputs(
                [str(tmp_path / "a.txt"), "-"], Stdin("第二篇。".encode()), lambda _: False, WebOptions(), None
            )
            sources = [raw.source async for raw in stream]
        finally:
            release.set()
            await busy
        return threading.get_ident(), sources

    loop_thread, sources = asyncio.run(main())
    assert sources == [str(tmp_path / "a.txt"), "-"] and readers == [loop_thread]


def test_a_folder_of_inputs_is_read_whole_in_batches(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app as cli

    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(40):  # more than two batches of read-ahead
        (folder / f"a{n:02}.txt").write_text(
            f"香港特區政府今日公布第{n}號消息，出口按年增長百分之二。", encoding="utf-8"
        )
    done = CliRunner().invoke(cli, ["summarize", str(folder), "--offline", "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (tmp_path / "out").glob("a*.md")) == [f"a{n:02}.md" for n in range(40)]


def test_offloaded_work_runs_on_one_thread_with_a_short_switch_interval() -> None:
    seen: list[tuple[int, float]] = []

    def job(n: int) -> int:
        seen.append((threading.get_ident(), sys.getswitchinterval()))
        return n * 2

    async def main() -> tuple[int, list[int]]:
        return threading.get_ident(), list(await asyncio.gather(*(responsive.off_loop(job, n) for n in range(6))))

    before = sys.getswitchinterval()
    loop_thread, doubled = asyncio.run(main())
    assert doubled == [0, 2, 4, 6, 8, 10]
    threads = {thread for thread, _ in seen}
    assert len(threads) == 1 and loop_thread not in threads  # one worker, never the loop's thread
    assert all(interval <= responsive.LOADING_SWITCH_INTERVAL for _, interval in seen)
    assert sys.getswitchinterval() == before  # restored once nothing is offloaded


def test_a_cancelled_offload_still_queued_never_starts() -> None:
    started: list[str] = []
    release = threading.Event()

    async def main() -> None:
        first = asyncio.ensure_future(responsive.off_loop(lambda: release.wait(5)))
        await asyncio.sleep(0.05)  # the worker is busy with it
        second = asyncio.ensure_future(responsive.off_loop(lambda: started.append("second")))
        await asyncio.sleep(0)
        second.cancel()
        await asyncio.sleep(0.05)  # the cancellation reaches the queued job (a few loop rounds)
        release.set()
        assert await first is True
        with pytest.raises(asyncio.CancelledError):
            await second
        await responsive.off_loop(lambda: None)  # the queue has moved past it

    asyncio.run(main())
    assert started == []


def test_a_pacer_lets_other_tasks_in_only_once_its_slice_is_used() -> None:
    async def ran_between(pacer: responsive.Pacer) -> bool:
        other: list[int] = []

        async def append() -> None:
            other.append(1)

        bystander = asyncio.ensure_future(append())
        await pacer.turn()
        turned = bool(other)
        await bystander
        return turned

    assert asyncio.run(ran_between(responsive.Pacer(slice_s=0.0))) is True
    assert asyncio.run(ran_between(responsive.Pacer(slice_s=60.0))) is False


def test_what_a_one_time_load_leaves_is_frozen_out_of_the_collector_s_walks() -> None:
    import gc
    import time

    def load(seconds: float) -> list[list[int]]:
        time.sleep(seconds)
        return [[n] for n in range(5000)]

    try:
        loaded = asyncio.run(responsive.load_in_thread(lambda: load(responsive.FREEZE_AFTER_S * 2)))
        done_already = asyncio.run(responsive.load_in_thread(lambda: load(0)))  # a load that had nothing to do
        walked = {id(o) for o in gc.get_objects()}  # generations 0-2: what collections walk
        assert gc.is_tracked(loaded[0]) and not any(id(item) in walked for item in loaded)
        assert all(id(item) in walked for item in done_already)  # a quick one freezes nothing
    finally:
        gc.unfreeze()


def test_a_failing_warm_up_is_left_for_the_real_first_use() -> None:
    from pipeline.ingest import warmup

    def broken() -> None:
        raise OSError("shipped table missing")

    warmup.quietly(broken)  # does not raise


def test_warm_up_leaves_ingest_answers_unchanged() -> None:
    from pipeline.ingest import warmup
    from pipeline.ingest.documents import ingest

    payload = warmup.SAMPLE.encode("utf-8") + "台灣的線路與香港的綫路。\n".encode()
    before = ingest(payload, "x.txt", "x")
    warmup.warm_up_model_path()
    assert ingest(payload, "x.txt", "x") == before


def test_a_backend_never_used_builds_no_sdk(monkeypatch: Any) -> None:
    backend = OpenAIHTTPBackend("http://127.0.0.1:9/v1", None, Deadlines(total=5, first_token=5, idle=5))
    monkeypatch.setattr(backend, "_build_sdk", lambda: pytest.fail("built without a request"))
    asyncio.run(backend.aclose())


# -- the folder walk -------------------------------------------------------------------------------


def test_folder_articles_walks_like_os_walk(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("x")
    (tmp_path / "A.MD").write_text("x")
    (tmp_path / ".hidden.txt").write_text("x")
    (tmp_path / "notes.pdf").write_text("x")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "c.html").write_text("x")
    (tmp_path / "sub" / "deeper" / "d.htm").write_text("x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "e.txt").write_text("x")
    os.symlink(tmp_path / "elsewhere", tmp_path / "linked-folder")  # not entered, as os.walk does not
    os.symlink(tmp_path / "b.txt", tmp_path / "link.txt")  # a link to an article is one
    os.symlink(tmp_path / "missing.txt", tmp_path / "dangling.txt")  # skipped
    os.symlink(tmp_path / "loop2.txt", tmp_path / "loop1.txt")
    os.symlink(tmp_path / "loop1.txt", tmp_path / "loop2.txt")

    found = list(files.folder_articles(tmp_path))

    paths = [os.path.relpath(p, tmp_path) for p in found if isinstance(p, str)]  # strings: a Path costs more held
    errors = {Path(e.source).name: str(e) for e in found if not isinstance(e, str)}
    assert paths == ["A.MD", "b.txt", "elsewhere/e.txt", "link.txt", "sub/c.html", "sub/deeper/d.htm"]
    assert set(errors) == {"loop1.txt", "loop2.txt"} and all("symlink loop" in e for e in errors.values())


def test_folder_articles_reports_an_unreadable_folder(tmp_path: Path) -> None:
    found = list(files.folder_articles(tmp_path / "gone"))
    assert len(found) == 1 and not isinstance(found[0], str) and "no such file" in str(found[0])


# -- the bench's stall probe ----------------------------------------------------------------------


def test_the_stall_probe_tells_waiting_from_working(tmp_path: Path) -> None:
    log = tmp_path / "stalls.json"
    script = textwrap.dedent(
        """
        import asyncio, time

        def spin():  # 40 ms of this thread's CPU, however loaded the machine
            end = time.thread_time() + 0.04
            while time.thread_time() < end:
                pass

        async def main():
            loop = asyncio.get_running_loop()
            loop.call_soon(time.sleep, 0.04)
            loop.call_soon(spin)
            await asyncio.sleep(0.1)

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "bench" / "stallprobe"), "BRIEF_STALL_LOG": str(log)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    report = json.loads(log.read_text(encoding="utf-8"))
    stalls = {s["resumed_at"]: s for s in report["slowest"]}
    assert stalls["sleep"]["cpu_ms"] < stalls["sleep"]["ms"] / 2  # waited, did not work
    assert stalls["spin"]["cpu_ms"] >= 40 and report["max_cpu_ms"] >= 40
    assert any("spin" in where for where, _ in stalls["spin"]["where"])
