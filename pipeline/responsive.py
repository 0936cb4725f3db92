"""Keeping the event loop responsive: CPU work off it, in worker threads that hand the GIL back quickly.

The loop thread should only move requests and replies. What leaves it:
- one-time loads (the openai SDK's import, CC-CEDICT, OpenCC's tables): `load_in_thread`;
- each article's ingest and chunking (decoding, cleaning, OpenCC, story split, token counts:
  7-20 ms and 4-7 ms on a real-size page, each one stall of the loop): `off_loop`, on one
  dedicated thread, so at most one such job competes with the loop for the GIL; a short input's
  (~1 ms) stays on the loop, where it costs less than the hop (`off_loop_if`);
- reading the input files, while such work is under way (`iterate_off_loop`; stdin never);
- a long loop on the loop itself (claiming the inputs' ids one after another) yields every
  `SLICE` seconds: a `Pacer`.

A worker thread running Python holds the GIL; each time a loop callback gives it up (every socket
write, every SQLite commit) the loop waits to get it back, which CPython forces only after the
switch interval, 5 ms. Measured with bench/stallprobe on 640 one-chunk articles, the loop's
callbacks took 5-60 ms of wall time for 0.2-2 ms of their own CPU while CC-CEDICT loaded. While
any worker job is under way the interval is 0.5 ms, so a hand-over waits at most that long.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import itertools
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

LOADING_SWITCH_INTERVAL = 0.0005  # seconds; CPython's default is 0.005
SLICE = 0.002  # seconds a loop may run on the event loop before it lets the others in

_lock = threading.Lock()
_offload: ThreadPoolExecutor | None = None
_running = 0
_saved_interval = 0.0


def _enter() -> None:
    global _running, _saved_interval
    with _lock:
        if _running == 0:
            _saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved_interval, LOADING_SWITCH_INTERVAL))
        _running += 1


def _leave() -> None:
    global _running
    with _lock:
        _running -= 1
        if _running == 0:
            sys.setswitchinterval(_saved_interval)


FREEZE_AFTER_S = 0.05  # a load this long built something that lives as long as the process


def loading(load: Callable[[], T]) -> T:
    """Run `load` (in the calling worker thread) with the short switch interval while it runs.

    After a real load (over FREEZE_AFTER_S), gc.freeze(): what it leaves (an import's classes,
    tables) lives as long as the process, and the import's own cyclic garbage (~500 objects of
    class building) cost a 60 ms collection, one C call the loop cannot interrupt. Frozen, the
    collector never walks either again; the price is that garbage, and any other cycle alive at
    that moment, kept until exit. A load already done (the next run of a process that summarises
    again) takes microseconds and freezes nothing, so a long-lived process does not keep adding.
    """
    _enter()
    started = time.perf_counter()
    try:
        return load()
    finally:
        if time.perf_counter() - started > FREEZE_AFTER_S:
            gc.freeze()
        _leave()


async def load_in_thread(load: Callable[[], T]) -> T:
    """`load()` in a worker thread, the event loop kept responsive while it runs (see the module docstring)."""
    _offload_thread()  # started now: started during the load, the start waited for the GIL (a 6 ms stall)
    return await asyncio.to_thread(loading, load)


def _offload_thread() -> ThreadPoolExecutor:
    global _offload
    if _offload is None:
        with _lock:
            if _offload is None:
                _offload = ThreadPoolExecutor(max_workers=1, thread_name_prefix="brief-offload")
                _offload.submit(int)  # its one thread starts with the first job
    return _offload


async def off_loop(work: Callable[..., T], *args: object, compute: bool = True) -> T:
    """`work(*args)` on the one offload thread, with the short switch interval while it waits and runs.

    `compute=False` for work that is mostly system calls (reading files), which give the GIL up by
    themselves: a short interval there would only make the threads trade the GIL more often.

    One thread, not asyncio's pool: every extra thread running Python is one more the loop queues
    behind for the GIL. A cancelled caller does not stop a job already running (it finishes and is
    dropped); one still queued is never started.
    """
    offload = _offload_thread()
    call = functools.partial(contextvars.copy_context().run, work, *args)  # as asyncio.to_thread does
    if compute:
        _enter()
    try:
        return await asyncio.get_running_loop().run_in_executor(offload, call)
    finally:
        if compute:
            _leave()


async def off_loop_if(heavy: bool, work: Callable[..., T], *args: object) -> T:
    """`work(*args)` off the loop when `heavy`, else here: for small inputs the two thread hops
    (~1 ms of CPU per article at 640 one-chunk articles) cost more than the work, which stays under ~2 ms."""
    return await off_loop(work, *args) if heavy else work(*args)


async def iterate_off_loop(items: Iterable[T], batch: int = 16) -> AsyncIterator[T]:
    """The items of a blocking iterator (files read as they are listed), `batch` at a time; taken on
    the offload thread while worker jobs are under way, else here.

    Each stat, open and read gives the GIL up; on the loop, while a one-time load ran beside it, each
    waited for it back (4 inputs read in 15-21 ms of wall time). With no such job the hop is all
    cost (a warm re-run of 1,000 articles: +0.09 s of CPU), so the batch is read on the loop then.
    """
    iterator = iter(items)
    while True:
        if _running:
            chunk = await off_loop(_take, iterator, batch, compute=False)
        else:
            chunk = _take(iterator, batch)
        if not chunk:
            return
        for item in chunk:
            yield item


def _take(iterator: Iterator[T], count: int) -> list[T]:
    return list(itertools.islice(iterator, count))


class Pacer:
    """`await pacer.turn()` once per item of a long loop: other tasks get the loop every `SLICE` seconds.

    A clock read per item, not a suspension per item (which would cost a loop round per input).
    """

    def __init__(self, slice_s: float = SLICE) -> None:
        self.slice_s = slice_s
        self._since = time.perf_counter()

    async def turn(self) -> None:
        if time.perf_counter() - self._since >= self.slice_s:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
