"""Event-loop stall probe, loaded by Python at start-up when this folder is on PYTHONPATH (bench only).

Every asyncio callback (a task step, an I/O callback, a timer) runs through Handle._run; timing
it gives each stall exactly, without asyncio's debug mode and its overhead. Each callback is timed
twice: wall time (what the other tasks waited) and the loop thread's own CPU time
(time.thread_time: what our code spent; wall much above CPU is the thread waiting, for the disk,
a lock, or the OS giving the core to another process on a loaded machine). A watchdog thread
samples the loop thread's stack while a callback has been running for longer than the threshold,
so a stall is charged to the code that was running, not to where the task happened to stop;
every sample of a stall is summarised ("where": the deepest pipeline frame and the innermost
frame, with how many samples each), the first few are kept whole.
Each stall says when it began (`at_s`, seconds after the loop's first callback). With
$BRIEF_STALL_OTHERS set, each sample also takes the other threads' stacks (`[thread name]` first):
a stall whose wall time is far above its CPU time shows who held the GIL meanwhile.
At exit the stalls go to $BRIEF_STALL_LOG as JSON. brief itself is not changed.
"""

from __future__ import annotations

import asyncio.events
import atexit
import json
import os
import sys
import threading
import time
from collections import Counter
from typing import Any

LOG = os.environ.get("BRIEF_STALL_LOG", "")
THRESHOLD = float(os.environ.get("BRIEF_STALL_THRESHOLD", "0.005"))
INTERVAL = THRESHOLD / 3  # between two samples of a running stall
KEEP = 200  # slowest stalls kept with their samples
KEEP_SAMPLES = 5  # whole stacks kept per stall; every sample is counted in "where"


def _short(path: str) -> str:
    """pipeline/x.py, a package's path under site-packages, a stdlib module's path, or the file name."""
    if "/site-packages/" in path:
        return path.rsplit("/site-packages/", 1)[1]
    if "/pipeline/" in path:
        return "pipeline/" + path.rsplit("/pipeline/", 1)[1]
    head, sep, tail = path.partition("/lib/python3.")
    if sep:
        return tail.partition("/")[2]
    return os.path.basename(path)


def _stack(frame: Any) -> list[str]:
    """The sampled stack, innermost first, as 'file:line function'."""
    out: list[str] = []
    while frame is not None and len(out) < 40:
        out.append(f"{_short(frame.f_code.co_filename)}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return out


def where(sample: list[str]) -> str:
    """One sample in a line: the deepest pipeline frame (-> the innermost frame under it), line numbers dropped."""

    def bare(frame: str) -> str:
        location, _, function = frame.partition(" ")
        return f"{location.rsplit(':', 1)[0]} {function}"

    if not sample:
        return "?"
    ours = next((frame for frame in sample if frame.startswith("pipeline/")), None)
    if ours is None:
        return bare(sample[0])
    return bare(ours) if ours == sample[0] else f"{bare(ours)} -> {bare(sample[0])}"


def _suspended_at(handle: Any) -> str:
    """Where the task run by this handle is suspended (innermost coroutine frame), or the callback's name."""
    callback = handle._callback
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro: Any = owner.get_coro()
        where = f"task {getattr(coro, '__qualname__', '?')}"
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is None:
                break
            where = f"{_short(frame.f_code.co_filename)}:{frame.f_lineno} {frame.f_code.co_name}"
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        return where
    return getattr(callback, "__qualname__", type(callback).__name__)


class _Probe:
    def __init__(self) -> None:
        self.seq = 0
        self.started = 0.0  # perf_counter at the start of the running callback; 0 when idle
        self.loop_thread = 0
        self.samples: dict[int, list[list[str]]] = {}
        self.stalls: list[dict[str, Any]] = []
        self.callbacks = 0
        self.over = 0
        self.over_cpu = 0  # callbacks whose loop-thread CPU time alone is over the threshold
        self.total_over = 0.0
        self.max = 0.0
        self.max_cpu = 0.0
        self.first = 0.0  # perf_counter at the loop's first callback: stalls say when they began

    def watch(self) -> None:
        while True:
            time.sleep(INTERVAL)
            started, seq = self.started, self.seq
            if started and time.perf_counter() - started > THRESHOLD:
                frames = sys._current_frames()
                frame = frames.get(self.loop_thread)
                if frame is not None and seq == self.seq:
                    self.samples.setdefault(seq, []).append(_stack(frame))
                    if os.environ.get("BRIEF_STALL_OTHERS"):
                        names = {t.ident: t.name for t in threading.enumerate()}
                        for ident, other in frames.items():
                            if ident not in (self.loop_thread, threading.get_ident()):
                                self.samples[seq].append([f"[thread {names.get(ident, '?')}]"] + _stack(other)[:6])

    def record(self, seconds: float, cpu: float, before: str, after: str, seq: int) -> None:
        self.over += 1
        self.total_over += seconds
        self.max = max(self.max, seconds)
        samples = self.samples.pop(seq, [])
        stall = {
            "ms": round(seconds * 1000, 2),
            "at_s": round(time.perf_counter() - seconds - self.first, 3),
            "cpu_ms": round(cpu * 1000, 2),
            "resumed_at": before,
            "suspended_at": after,
            "where": Counter(where(s) for s in samples).most_common(8),
            "samples": samples[:KEEP_SAMPLES],
        }
        self.stalls.append(stall)
        if len(self.stalls) > 2 * KEEP:
            self.stalls.sort(key=lambda s: -s["ms"])
            del self.stalls[KEEP:]

    def dump(self) -> None:
        self.stalls.sort(key=lambda s: -s["ms"])
        report = {
            "threshold_ms": THRESHOLD * 1000,
            "sample_interval_ms": round(INTERVAL * 1000, 3),
            "callbacks": self.callbacks,
            "stalls": self.over,
            "stalls_by_cpu": self.over_cpu,
            "stall_ms_total": round(self.total_over * 1000, 1),
            "max_ms": round(self.max * 1000, 2),
            "max_cpu_ms": round(self.max_cpu * 1000, 2),
            "slowest": self.stalls[:KEEP],
        }
        with open(LOG, "w", encoding="utf-8") as out:
            json.dump(report, out, ensure_ascii=False)


def _install() -> None:
    probe = _Probe()
    original = asyncio.events.Handle._run
    thread_time = time.thread_time

    def timed_run(self: Any) -> None:
        if probe.loop_thread == 0:
            probe.loop_thread = threading.get_ident()
            probe.first = time.perf_counter()
            threading.Thread(target=probe.watch, daemon=True, name="stall-probe").start()
        probe.callbacks += 1
        probe.seq += 1
        seq = probe.seq
        before = _suspended_at(self)
        cpu_started = thread_time()
        probe.started = time.perf_counter()
        try:
            original(self)
        finally:
            elapsed = time.perf_counter() - probe.started
            cpu = thread_time() - cpu_started
            probe.started = 0.0
            if cpu > THRESHOLD:
                probe.over_cpu += 1
                probe.max_cpu = max(probe.max_cpu, cpu)
            if elapsed > THRESHOLD:
                probe.record(elapsed, cpu, before, _suspended_at(self), seq)
            else:
                probe.samples.pop(seq, None)

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    atexit.register(probe.dump)


if LOG:
    _install()
