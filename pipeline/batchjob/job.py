"""Batch job steps over a job folder: prepare, submit, status, cancel, collect, import (each resumable).

All state lives in JOB/ (job.json, the request files, downloaded results); each step reads it
afresh, so a job interrupted anywhere (Ctrl-C, a reboot) goes on from where it stopped.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import openai

from pipeline.batchjob.api import Provider, Sleep
from pipeline.batchjob.engine import StageEngine
from pipeline.batchjob.jsonl import CHAT_URL, MAX_BYTES, MAX_LINES, RequestWriter, one_line
from pipeline.batchjob.manifest import (
    TERMINAL,
    BatchJobError,
    FileRecord,
    Manifest,
    NotReady,
    RoundRecord,
    StageCounts,
    load,
    new_manifest,
    redact_endpoint,
    save,
)
from pipeline.batchjob.report import CollectReport, JobStatus, PrepareSummary, StageEstimate, file_status
from pipeline.batchjob.rounds import ApplyReport, Checkpoint, apply_results, close_round, no_checkpoint, record_failure

_STAGE = re.compile(r"[a-z0-9_]{1,40}")


def _base_name(job: Manifest, stage: str) -> str:
    earlier = sum(1 for rnd in job.rounds if any(record.stage == stage for record in rnd.files))
    return f"requests-{stage}" if earlier == 0 else f"requests-{stage}-retry{earlier}"


def _remove_leftovers(job_dir: Path, base: str) -> None:
    """Drop request files a crashed prepare wrote but never recorded (same names are about to be written)."""
    for path in [*job_dir.glob(f"{base}.jsonl"), *job_dir.glob(f"{base}-[0-9][0-9][0-9].jsonl")]:
        path.unlink()


async def prepare(
    engine: StageEngine,
    job_dir: Path,
    *,
    url: str = CHAT_URL,
    completion_window: str = "24h",
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
    max_attempts: int = 3,
    checkpoint: Checkpoint = no_checkpoint,
) -> PrepareSummary:
    """Write the next round's request files (what engine.pending() returns, minus requests that failed for good).

    The settings are fixed when the job is created. With a round still open nothing is written
    and its summary is returned again.
    """
    if (job_dir / "job.json").exists():
        job = load(job_dir)
    else:
        job_dir.mkdir(parents=True, exist_ok=True)
        job = new_manifest(
            url=url,
            completion_window=completion_window,
            max_lines=max_lines,
            max_bytes=max_bytes,
            max_attempts=max_attempts,
        )
        save(job_dir, job)
    open_round = job.open_round()
    if open_round is not None:
        return _summary(job, job_dir, open_round, new=False)
    final = job.final_failures()
    rnd = RoundRecord(number=len(job.rounds) + 1)
    writers: dict[str, RequestWriter] = {}
    fresh: dict[str, int] = {}  # stage → requests written that never failed before
    skipped = 0
    try:
        # One pass over the pending requests (streamed from the engine's spool): each stage has its own files.
        for request in await engine.pending():
            if request.custom_id in final:
                skipped += 1
                continue
            writer = writers.get(request.stage)
            if writer is None:
                if not _STAGE.fullmatch(request.stage):
                    raise BatchJobError(
                        f"stage name {request.stage!r} cannot name a request file (use letters, digits, _)"
                    )
                base = _base_name(job, request.stage)
                _remove_leftovers(job_dir, base)
                writer = writers[request.stage] = RequestWriter(
                    job_dir, base, url=job.url, max_lines=job.max_lines, max_bytes=job.max_bytes
                )
                fresh[request.stage] = 0
            if writer.add(request) and request.custom_id not in job.failures:
                fresh[request.stage] += 1
            model = request.body.get("model")
            if isinstance(model, str) and model not in job.models:
                job.models.append(model)
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    if not writers:
        return PrepareSummary(job_dir=job_dir, round=None, new=False, skipped_failed=skipped)
    for stage, writer in writers.items():
        written = writer.close()
        for custom_id in written.oversize:
            failure = record_failure(job, custom_id, stage, f"one request exceeds {job.max_bytes} bytes", rnd.number)
            failure.final = True
        counts = job.stages.setdefault(stage, StageCounts())
        counts.failed += len(written.oversize)
        counts.requests += fresh[stage]
        for item in written.files:
            rnd.files.append(FileRecord(**vars(item)))
            counts.sent += item.lines
            counts.est_prompt_tokens += item.est_prompt_tokens
            counts.max_output_tokens += item.max_output_tokens
    checkpoint("prepare:written")
    if rnd.files:
        job.rounds.append(rnd)
    save(job_dir, job)
    checkpoint("prepare:saved")
    if not rnd.files:  # everything was oversize: nothing to send, go again for the next stage
        return await prepare(engine, job_dir, checkpoint=checkpoint)
    return _summary(job, job_dir, rnd, new=True)


def _summary(job: Manifest, job_dir: Path, rnd: RoundRecord, *, new: bool) -> PrepareSummary:
    stages: dict[str, StageEstimate] = {}
    for record in rnd.files:
        estimate = stages.setdefault(record.stage, StageEstimate(stage=record.stage))
        estimate.requests += record.lines
        estimate.est_prompt_tokens += record.est_prompt_tokens
        estimate.max_output_tokens += record.max_output_tokens
        estimate.files.append(record.name)
    for failure in job.failures.values():
        if failure.round == rnd.number - 1 and not failure.final and failure.stage in stages:
            stages[failure.stage].retries += 1
    return PrepareSummary(job_dir=job_dir, round=rnd.number, new=new, stages=list(stages.values()))


def _need_round(job: Manifest, job_dir: Path, states: tuple[str, ...]) -> RoundRecord:
    rnd = job.open_round()
    if rnd is None or rnd.state not in states:
        now = "no open round" if rnd is None else f"round {rnd.number} is {rnd.state}"
        raise BatchJobError(f"{job_dir}: {now} (expected {' or '.join(states)})")
    return rnd


async def submit(
    job_dir: Path, client: openai.AsyncOpenAI, *, sleep: Sleep = asyncio.sleep, checkpoint: Checkpoint = no_checkpoint
) -> JobStatus:
    """Upload the open round's files (purpose "batch") and create one batch per file; safe to repeat."""
    job = load(job_dir)
    rnd = _need_round(job, job_dir, ("prepared", "submitted"))
    provider = Provider(client, sleep=sleep)
    endpoint = redact_endpoint(str(client.base_url))
    started = any(record.upload_started for r in job.rounds for record in r.files)
    if job.endpoint not in (None, endpoint) and started:
        raise BatchJobError(f"{job_dir}: this job's batches live at {job.endpoint}, not {endpoint}")
    job.endpoint = endpoint
    for record in rnd.files:
        if record.file_id is None:
            remote_name = f"{job.job_id}-{record.name}"
            if record.upload_started:
                record.file_id = await provider.find_file(remote_name, record.bytes)
            if record.file_id is None:
                record.upload_started = True
                save(job_dir, job)
                checkpoint("upload:started")
                record.file_id = await provider.upload(job_dir / record.name, remote_name)
                checkpoint("upload:done")
            save(job_dir, job)
            checkpoint("upload:saved")
        if record.batch_id is None:
            found = await provider.find_batch(record.file_id) if record.create_started else None
            if found is None:
                record.create_started = True
                save(job_dir, job)
                checkpoint("create:started")
                metadata = {"brief_job": job.job_id, "brief_file": record.name}
                found = await provider.create(
                    record.file_id, url=job.url, window=job.completion_window, metadata=metadata
                )
                checkpoint("create:done")
            record.batch_id, record.status = found.id, found.status
            save(job_dir, job)
            checkpoint("create:saved")
    if rnd.state == "prepared":
        rnd.state, rnd.source = "submitted", "api"
        save(job_dir, job)
    return _status(job, rnd)


def _update(record: FileRecord, batch: openai.types.Batch) -> None:
    record.status = batch.status
    record.output_file_id = batch.output_file_id
    record.error_file_id = batch.error_file_id
    if batch.request_counts is not None:
        record.request_counts = batch.request_counts.model_dump()
    if batch.errors is not None and batch.errors.data:
        record.batch_errors = [one_line(f"{e.code or 'error'}: {e.message or ''}") for e in batch.errors.data[:5]]


def _status(job: Manifest, rnd: RoundRecord | None) -> JobStatus:
    files = [file_status(record) for record in rnd.files] if rnd is not None else []
    return JobStatus(
        round=rnd.number if rnd is not None else None,
        state=rnd.state if rnd is not None else ("finished" if job.finished else "idle"),
        files=files,
        stages=dict(job.stages),
        failed=len(job.final_failures()),
        exit_code=job.exit_code,
    )


async def status(
    job_dir: Path, client: openai.AsyncOpenAI, *, sleep: Sleep = asyncio.sleep, checkpoint: Checkpoint = no_checkpoint
) -> JobStatus:
    """Refresh the open round's batch statuses from the provider."""
    job = load(job_dir)
    rnd = job.open_round()
    if rnd is not None and rnd.state == "submitted":
        provider = Provider(client, sleep=sleep)
        for record in rnd.files:
            if record.batch_id is not None and record.status not in TERMINAL:
                _update(record, await provider.retrieve(record.batch_id))
        save(job_dir, job)
        checkpoint("poll")
    return _status(job, rnd)


async def cancel(job_dir: Path, client: openai.AsyncOpenAI, *, sleep: Sleep = asyncio.sleep) -> JobStatus:
    """Ask the provider to cancel the open round's running batches (their partial results stay collectable)."""
    job = load(job_dir)
    rnd = _need_round(job, job_dir, ("submitted",))
    provider = Provider(client, sleep=sleep)
    for record in rnd.files:
        if record.batch_id is not None and record.status not in TERMINAL:
            _update(record, await provider.cancel(record.batch_id))
    save(job_dir, job)
    return _status(job, rnd)


def _missing_reason(record: FileRecord) -> str:
    reason = f"no result line (batch {record.status})"
    return f"{reason}: {'; '.join(record.batch_errors)}" if record.batch_errors else reason


async def collect(
    job_dir: Path,
    client: openai.AsyncOpenAI,
    engine: StageEngine,
    *,
    live_fallback: bool = False,
    sleep: Sleep = asyncio.sleep,
    checkpoint: Checkpoint = no_checkpoint,
) -> CollectReport:
    """Download the finished round's output and error files, accept each line, settle failures, write the next round."""
    job = load(job_dir)
    rnd = _need_round(job, job_dir, ("submitted", "collected"))
    if rnd.state == "submitted":
        running = [r.name for r in rnd.files if r.status not in TERMINAL]
        if running:
            raise NotReady(f"{job_dir}: round {rnd.number} still running: {', '.join(running)}")
        provider = Provider(client, sleep=sleep)
        paths: list[Path] = []
        for record in rnd.files:
            stem = record.name.removeprefix("requests-").removesuffix(".jsonl")
            for kind, file_id in (("output", record.output_file_id), ("errors", record.error_file_id)):
                if not file_id:
                    continue
                local = f"results-{stem}-{kind}.jsonl"
                if local not in record.downloaded:
                    await provider.download(file_id, job_dir / local)
                    record.downloaded.append(local)
                    save(job_dir, job)
                    checkpoint("download")
                paths.append(job_dir / local)
        reasons = [_missing_reason(record) for record in rnd.files]
        applied = await apply_results(job, job_dir, rnd, paths, engine, missing_reasons=reasons, checkpoint=checkpoint)
        rnd.state = "collected"
        save(job_dir, job)
        checkpoint("collect:saved")
    else:
        applied = None
    return await _settle(job, job_dir, rnd, engine, applied, live_fallback=live_fallback, checkpoint=checkpoint)


async def import_results(
    job_dir: Path,
    results_path: Path,
    engine: StageEngine,
    *,
    live_fallback: bool = False,
    checkpoint: Checkpoint = no_checkpoint,
) -> CollectReport:
    """Apply a results file made elsewhere (e.g. `vllm run-batch`) to the open round, then advance like collect.

    Lines may come in any order and the file may cover only part of the round; the round
    closes once every request has a line (ok or failed).
    """
    job = load(job_dir)
    rnd = _need_round(job, job_dir, ("prepared", "submitted", "collected"))
    applied = None
    if rnd.state != "collected":
        if not results_path.is_file():
            raise BatchJobError(f"{results_path}: no such results file")
        applied = await apply_results(job, job_dir, rnd, [results_path], engine, checkpoint=checkpoint)
        rnd.source = rnd.source or "import"
        rnd.imported.append(results_path.name)
        if applied.unresolved == 0:
            rnd.state = "collected"
        save(job_dir, job)
        checkpoint("import:saved")
        if rnd.state != "collected":
            return CollectReport.of(applied, closed=None)
    return await _settle(job, job_dir, rnd, engine, applied, live_fallback=live_fallback, checkpoint=checkpoint)


async def _settle(
    job: Manifest,
    job_dir: Path,
    rnd: RoundRecord,
    engine: StageEngine,
    applied: ApplyReport | None,
    *,
    live_fallback: bool,
    checkpoint: Checkpoint,
) -> CollectReport:
    closed = await close_round(job, job_dir, rnd, engine, live_fallback=live_fallback, checkpoint=checkpoint)
    save(job_dir, job)
    checkpoint("close:saved")
    report = CollectReport.of(applied, closed=closed)
    report.next = await prepare(engine, job_dir, checkpoint=checkpoint)
    if report.next.round is None:
        report.exit_code = await finish_job(job_dir, engine, checkpoint)
    return report


async def finish_job(job_dir: Path, engine: StageEngine, checkpoint: Checkpoint = no_checkpoint) -> int:
    """Have the engine write the outputs and record that the job finished, with its exit code."""
    checkpoint("finish:start")
    code = await engine.finish()
    job = load(job_dir)
    job.finished, job.exit_code = True, code
    save(job_dir, job)
    checkpoint("finish:saved")
    return code


def failed_requests(job_dir: Path) -> dict[str, str]:
    """custom_id → reason for every request that failed for good (for the outputs and the exit code)."""
    return {key: failure.reason for key, failure in load(job_dir).failures.items() if failure.final}
