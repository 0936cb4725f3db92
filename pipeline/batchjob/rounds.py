"""Apply result lines to a round and close it: each request accepted once, every failure recorded with its reason.

Which requests still need a result is asked of the engine (`pending()`), never remembered
here: a resumed collect, an imported file given twice, or a result for a request that is
already cached are all skipped the same way, so `engine.accept` runs at most once per
request that is actually accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.batchjob.engine import LiveReply, StageEngine, stages_of
from pipeline.batchjob.jsonl import ParseStats, iter_request_ids, iter_results, one_line, usage_of
from pipeline.batchjob.manifest import Failure, Manifest, RoundRecord, StageCounts
from pipeline.memory import GiveBack

Checkpoint = Callable[[str], None]


def no_checkpoint(label: str) -> None:
    """The default step hook: do nothing (tests pass one that interrupts the job)."""


@dataclass
class ApplyReport:
    """What one pass over result files did."""

    round: int
    stats: ParseStats = field(default_factory=ParseStats)
    accepted: int = 0
    failed: int = 0  # result lines that were errors, or that the engine rejected
    unexpected: int = 0  # custom_id not in this round, or already accepted
    missing: int = 0  # requests with no result line in a finished batch
    unresolved: int = 0  # requests still waiting for a result line (imports may come in parts)


@dataclass
class CloseReport:
    """How the failed requests of a closed round were handled."""

    round: int
    accepted: int = 0
    live: int = 0
    requeued: int = 0
    failed: int = 0


def round_ids(job_dir: Path, rnd: RoundRecord) -> dict[str, int]:
    """Map every custom_id of a round to the index of its request file."""
    ids: dict[str, int] = {}
    for index, record in enumerate(rnd.files):
        for custom_id in iter_request_ids(job_dir / record.name):
            ids.setdefault(custom_id, index)
    return ids


def record_failure(job: Manifest, custom_id: str, stage: str, reason: str, round_number: int) -> Failure:
    """Note that a request failed in this round; a second note in the same round only updates the reason."""
    previous = job.failures.get(custom_id)
    if previous is not None and previous.round == round_number:
        previous.reason = reason
        return previous
    attempts = (previous.attempts if previous is not None else 0) + 1
    failure = Failure(stage=stage, reason=reason, attempts=attempts, round=round_number)
    job.failures[custom_id] = failure
    return failure


def _accept(engine: StageEngine, custom_id: str, body: dict[str, Any]) -> str | None:
    try:
        problem = engine.accept(custom_id, body)
    except Exception as err:  # an engine bug must not lose the rest of the file; it is recorded per request
        return f"accept raised {type(err).__name__}: {one_line(err)}"
    return None if problem is None else one_line(problem)


async def apply_results(
    job: Manifest,
    job_dir: Path,
    rnd: RoundRecord,
    paths: Iterable[Path],
    engine: StageEngine,
    *,
    missing_reasons: list[str] | None = None,
    checkpoint: Checkpoint = no_checkpoint,
) -> ApplyReport:
    """Accept every good line of these result files; record the rest as failures of this round.

    missing_reasons (one per request file) says the batches are finished: a request with no
    line at all fails with its file's reason. Without it (an import) such requests stay unresolved.
    """
    expected = round_ids(job_dir, rnd)
    outstanding = stages_of(await engine.pending()).keys() & expected.keys()
    report = ApplyReport(round=rnd.number)
    give_back = GiveBack()
    for path in paths:
        for item in iter_results(path, report.stats):
            give_back.tick()
            custom_id = item.custom_id
            if custom_id not in outstanding:
                report.unexpected += 1
                continue
            problem = item.error
            stage = rnd.files[expected[custom_id]].stage
            if problem is None and item.body is not None:
                problem = _accept(engine, custom_id, item.body)
                if problem is None:
                    outstanding.discard(custom_id)
                    report.accepted += 1
                    _add_tokens(job, stage, *usage_of(item.body))
                    failure = job.failures.get(custom_id)
                    if failure is not None and not failure.final:
                        del job.failures[custom_id]
                    checkpoint("accept")
                    continue
                problem = f"rejected: {problem}"
            record_failure(job, custom_id, stage, problem or "empty result", rnd.number)
            report.failed += 1
    for custom_id in outstanding:
        failure = job.failures.get(custom_id)
        if failure is not None and failure.round == rnd.number:
            continue
        if missing_reasons is None:
            report.unresolved += 1
            continue
        index = expected[custom_id]
        record_failure(job, custom_id, rnd.files[index].stage, missing_reasons[index], rnd.number)
        report.missing += 1
    rnd.junk += report.stats.junk
    rnd.unexpected += report.unexpected
    return report


def _add_tokens(job: Manifest, stage: str, prompt_tokens: int, completion_tokens: int) -> None:
    counts = job.stages.setdefault(stage, StageCounts())
    counts.prompt_tokens += prompt_tokens
    counts.completion_tokens += completion_tokens


async def close_round(
    job: Manifest,
    job_dir: Path,
    rnd: RoundRecord,
    engine: StageEngine,
    *,
    live_fallback: bool = False,
    checkpoint: Checkpoint = no_checkpoint,
) -> CloseReport:
    """Settle a round whose every request has a result: send failures live, queue a follow-up, or give up."""
    expected = round_ids(job_dir, rnd)
    listed = await engine.pending()
    pending = {key: stage for key, stage in stages_of(listed).items() if key in expected}
    report = CloseReport(round=rnd.number)
    by_stage: dict[str, StageCounts] = {}

    def stage_of(custom_id: str) -> StageCounts:
        stage = rnd.files[expected[custom_id]].stage
        return by_stage.setdefault(stage, StageCounts())

    for custom_id in expected:
        if custom_id not in pending:
            stage_of(custom_id).accepted += 1
    failed = list(pending)
    for custom_id in failed:  # a request can reach here without a note only through an engine that changed its mind
        if job.failures.get(custom_id) is None or job.failures[custom_id].round != rnd.number:
            record_failure(job, custom_id, pending[custom_id], "no result", rnd.number)
    if live_fallback and failed:
        wanted = set(failed)
        problems = await engine.send_live([request for request in listed if request.custom_id in wanted])
        checkpoint("live")
        for custom_id in failed:
            problem = problems.get(custom_id, "no answer from the live fallback")
            if problem is None or isinstance(problem, LiveReply):
                del job.failures[custom_id]
                stage_of(custom_id).live += 1
                if problem is not None:
                    stage = rnd.files[expected[custom_id]].stage
                    _add_tokens(job, stage, problem.prompt_tokens, problem.completion_tokens)
            else:
                failure = job.failures[custom_id]
                failure.reason = f"{failure.reason}; live: {one_line(problem)}"
                failure.final = True
                stage_of(custom_id).failed += 1
    else:
        for custom_id in failed:
            failure = job.failures[custom_id]
            if failure.attempts >= job.max_attempts:
                failure.final = True
                stage_of(custom_id).failed += 1
            else:
                stage_of(custom_id).requeued += 1
    for stage, counts in by_stage.items():
        total = job.stages.setdefault(stage, StageCounts())
        total.accepted += counts.accepted
        total.live += counts.live
        total.failed += counts.failed
        total.requeued += counts.requeued
        report.accepted += counts.accepted
        report.live += counts.live
        report.failed += counts.failed
        report.requeued += counts.requeued
    rnd.accepted, rnd.live, rnd.failed, rnd.requeued = report.accepted, report.live, report.failed, report.requeued
    rnd.state = "closed"
    return report
