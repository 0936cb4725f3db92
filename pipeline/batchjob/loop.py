"""Run a Batch job to the end: submit → poll with backoff → collect → next stage → … → the outputs.

Every step re-reads JOB/, so `run` resumes any job folder, whatever step it was stopped in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import openai
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay, stop_never
from tenacity.wait import wait_base, wait_exponential, wait_random

from pipeline.batchjob.api import Sleep
from pipeline.batchjob.engine import StageEngine
from pipeline.batchjob.job import collect, finish_job, prepare, status, submit
from pipeline.batchjob.manifest import NotReady, load
from pipeline.batchjob.report import JobStatus
from pipeline.batchjob.rounds import Checkpoint, no_checkpoint

DEFAULT_POLL: wait_base = wait_exponential(multiplier=5, min=5, max=300) + wait_random(0, 1)  # 10 s … 5 min


async def run(
    job_dir: Path,
    client: openai.AsyncOpenAI,
    engine: StageEngine,
    *,
    poll: wait_base = DEFAULT_POLL,
    sleep: Sleep = asyncio.sleep,
    max_wait: float | None = None,
    live_fallback: bool = False,
    on_status: Callable[[JobStatus], None] | None = None,
    checkpoint: Checkpoint = no_checkpoint,
) -> int:
    """Submit → poll with backoff → collect → next stage → … → engine.finish(); resumes any job folder.

    poll is a tenacity wait strategy between status checks; max_wait (seconds per round) stops
    polling with NotReady. Returns engine.finish()'s exit code.
    """
    if not (job_dir / "job.json").exists():
        await prepare(engine, job_dir, checkpoint=checkpoint)
    while True:
        job = load(job_dir)
        rnd = job.open_round()
        if rnd is None:
            summary = await prepare(engine, job_dir, checkpoint=checkpoint)
            if summary.round is None:
                return await finish_job(job_dir, engine, checkpoint)
            continue
        if rnd.state == "prepared":
            await submit(job_dir, client, sleep=sleep, checkpoint=checkpoint)
            continue
        if rnd.state == "submitted":
            await _wait_done(
                job_dir, client, poll=poll, sleep=sleep, max_wait=max_wait, on_status=on_status, checkpoint=checkpoint
            )
        report = await collect(job_dir, client, engine, live_fallback=live_fallback, sleep=sleep, checkpoint=checkpoint)
        if report.exit_code is not None:
            return report.exit_code


async def _wait_done(
    job_dir: Path,
    client: openai.AsyncOpenAI,
    *,
    poll: wait_base,
    sleep: Sleep,
    max_wait: float | None,
    on_status: Callable[[JobStatus], None] | None,
    checkpoint: Checkpoint,
) -> None:
    async def check() -> JobStatus:
        current = await status(job_dir, client, sleep=sleep, checkpoint=checkpoint)
        if on_status is not None:
            on_status(current)
        return current

    retrying = AsyncRetrying(
        wait=poll,
        stop=stop_after_delay(max_wait) if max_wait is not None else stop_never,
        retry=retry_if_result(lambda current: not current.done),
        sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
    final: JobStatus | None = await retrying(check)
    if final is None or not final.done:
        raise NotReady(f"{job_dir}: batches still running after {max_wait} s; run again to keep waiting")
