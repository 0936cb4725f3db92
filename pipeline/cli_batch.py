"""`brief batch …`: parse options, call pipeline.batchjob over the pipeline engine, map errors to exit codes.

Registered in pipeline.cli as the `batch` sub-app. pipeline.cli is imported inside the commands
(for say, fail and settings_from), so either module may be imported first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from pipeline.errors import EXIT_INTERRUPTED, EXIT_USAGE, BriefError
from pipeline.records import JSON_MODES

if TYPE_CHECKING:
    import openai

    from pipeline.batchjob.pipeline_engine import PipelineEngine
    from pipeline.batchjob.report import JobStatus
    from pipeline.config import Settings

T = TypeVar("T")

batch_app = typer.Typer(
    help="Run the model stages as Batch jobs: OpenAI or DashScope Batch API, `vllm run-batch`, SGLang.",
    no_args_is_help=True,
)

JsonMode = Enum("JsonMode", {m: m for m in JSON_MODES}, type=str)  # type: ignore[misc]
JobArg = Annotated[Path, typer.Argument(help="The job folder made by `brief batch prepare`.")]
LiveOpt = Annotated[
    bool,
    typer.Option("--live-fallback", help="Send requests that failed in a batch live now, instead of in a follow-up."),
]
# The Files API has no client-side deadline worth having below this: request files reach 100 MB.
_UPLOAD_TIMEOUT_S = 600.0


def _say(message: str) -> None:
    from pipeline.cli import say

    say(message)


def _fail(message: str, code: int) -> typer.Exit:
    from pipeline.cli import fail

    return fail(message, code)


def _show(lines: list[str]) -> None:
    """The requested output (summaries, status) goes to stdout, scrubbed and printable like everything else."""
    from pipeline.secrets import scrub
    from pipeline.terminal import printable

    for line in lines:
        print(printable(scrub(line)), flush=True)


def _run(coro: Coroutine[Any, Any, T], job_dir: Path) -> T:
    from pipeline.app import run_main

    try:
        return run_main(coro)  # type: ignore[no-any-return]
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise _fail(
            f"interrupted: {job_dir} keeps every step done; `brief batch run {job_dir}` goes on", EXIT_INTERRUPTED
        ) from None
    except BriefError as exc:
        raise _fail(str(exc), exc.exit_code) from exc
    except OSError as exc:
        raise _fail(f"{job_dir}: {exc.strerror or exc} ({exc.filename or 'file system'})", EXIT_USAGE) from exc


def _load(job_dir: Path) -> tuple[PipelineEngine, Settings]:
    """The job's engine, with the settings recorded at prepare time (the key and limits from the environment)."""
    from pipeline.batchjob.pipeline_engine import PipelineEngine, load_inputs
    from pipeline.cli import settings_from

    try:
        inputs = load_inputs(job_dir)
    except BriefError as exc:
        raise _fail(str(exc), exc.exit_code) from exc
    settings = settings_from(inputs.flags())
    return PipelineEngine(job_dir, inputs, settings, _say), settings


def _batches_client(settings: Settings) -> openai.AsyncOpenAI:
    """The Files and Batches client: SDK retries off (the job retries), the key only for a named endpoint."""
    import openai

    return openai.AsyncOpenAI(
        base_url=settings.base_url,
        api_key=settings.api_key_for_endpoint or "sk-no-key-required",
        max_retries=0,
        timeout=max(settings.timeout or 0.0, _UPLOAD_TIMEOUT_S),
    )


def _settings(job_dir: Path) -> Settings:
    return _load(job_dir)[1]


def _next_step(job_dir: Path, report_next: Any, imported: bool) -> None:
    if report_next is None or report_next.round is None:
        return
    if imported:
        files = ", ".join(name for stage in report_next.stages for name in stage.files)
        _say(f"next: run {files} through `vllm run-batch`, then `brief batch import {job_dir} RESULTS.jsonl`")
    else:
        _say(f"next: `brief batch run {job_dir}` (or submit, status, collect)")


def _finished(engine: PipelineEngine, code: int) -> None:
    report = engine.report
    if report is None:
        return
    totals = report.totals()
    _say(
        f"{totals['ok']}/{totals['inputs']} inputs ok, {totals['documents']} articles; "
        f"outputs in {engine.inputs.out_dir} (exit code {code})"
    )


@batch_app.command("prepare")
def prepare_cmd(
    paths: Annotated[list[str], typer.Argument(help="Files and folders of articles.")],
    out: Annotated[Path, typer.Option("--out", help="The job folder: request files, job.json, results.")],
    model: Annotated[str | None, typer.Option("--model", help="Model name (env BRIEF_MODEL); required.")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint (env OPENAI_BASE_URL).")
    ] = None,
    max_chunk_tokens: Annotated[int | None, typer.Option("--max-chunk-tokens", min=50)] = None,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Cache directory (the replies land here).")
    ] = None,
    json_mode: Annotated[JsonMode | None, typer.Option("--json-mode", help="Structured-output form.")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Final outputs folder (default: JOB/out).")] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Fail an article whose figures, names or language cannot be verified (kept)."),
    ] = False,
) -> None:
    """Write the first stage's request files and show the requests and tokens per stage before any spending."""
    from pipeline.app import prepare_output
    from pipeline.batchjob import prepare
    from pipeline.batchjob.pipeline_engine import JobInputs, PipelineEngine, create_job
    from pipeline.cli import settings_from

    flags = {
        "model": model,
        "base_url": base_url,
        "max_chunk_tokens": max_chunk_tokens,
        "cache_dir": cache_dir,
        "json_mode": json_mode.value if json_mode else None,
        "strict": True if strict else None,  # else BRIEF_STRICT or the config file; recorded either way
    }
    try:
        inputs = JobInputs.of(settings_from(flags), paths, Path.cwd(), output if output is not None else out / "out")
    except BriefError as exc:
        raise _fail(str(exc), exc.exit_code) from exc
    settings = settings_from(inputs.flags())  # from here on, exactly what every later step of the job will use

    async def go() -> Any:
        prepare_output(Path(inputs.out_dir), inputs.sources())  # an unusable output folder fails before any spending
        create_job(out, inputs)
        engine = PipelineEngine(out, inputs, settings, _say)
        try:
            return await prepare(engine, out)
        finally:
            engine.close()

    summary = _run(go(), out)
    _show(summary.lines())
    if summary.round is None:
        _say(f"every request is cached: `brief batch run {out}` writes the outputs")
    else:
        _say(f"next: `brief batch run {out}`, or `vllm run-batch` on each file and `brief batch import`")


def _with_provider(job: Path, step: Callable[[Path, Any], Awaitable[JobStatus]]) -> JobStatus:
    """Run one provider step (submit, status, cancel) with a Files/Batches client opened and closed around it."""
    settings = _settings(job)

    async def go() -> JobStatus:
        client = _batches_client(settings)
        try:
            return await step(job, client)
        finally:
            await client.close()

    return _run(go(), job)


@batch_app.command("submit")
def submit_cmd(job: JobArg) -> None:
    """Upload the open round's request files and create their batches (safe to repeat)."""
    from pipeline.batchjob import submit

    _show(_with_provider(job, submit).lines())


@batch_app.command("status")
def status_cmd(job: JobArg) -> None:
    """Show the open round's batches (asking the provider) and the job's totals."""
    from pipeline.batchjob import failed_requests, status

    _show(_with_provider(job, status).lines())
    try:
        failures = failed_requests(job)
    except BriefError as exc:
        raise _fail(str(exc), exc.exit_code) from exc
    _show([f"  failed for good: {key[:12]}…: {reason}" for key, reason in list(failures.items())[:10]])


@batch_app.command("cancel")
def cancel_cmd(job: JobArg) -> None:
    """Ask the provider to cancel the open round's batches (their finished lines stay collectable)."""
    from pipeline.batchjob import cancel

    _show(_with_provider(job, cancel).lines())


@batch_app.command("collect")
def collect_cmd(job: JobArg, live_fallback: LiveOpt = False) -> None:
    """Download the finished round's results, accept each reply, write the next stage (or the outputs)."""
    from pipeline.batchjob import collect

    engine, settings = _load(job)

    async def go() -> Any:
        client = _batches_client(settings)
        try:
            return await collect(job, client, engine, live_fallback=live_fallback)
        finally:
            await client.close()
            engine.close()

    report = _run(go(), job)
    _show(report.lines())
    _next_step(job, report.next, imported=False)
    if report.exit_code is not None:
        _finished(engine, report.exit_code)
        raise typer.Exit(report.exit_code)


@batch_app.command("import")
def import_cmd(
    job: JobArg,
    results: Annotated[Path, typer.Argument(help="A results file (e.g. from `vllm run-batch -o`).")],
    live_fallback: LiveOpt = False,
) -> None:
    """Apply a results file made elsewhere (any order, in parts), then advance like collect."""
    from pipeline.batchjob import import_results

    engine, _ = _load(job)

    async def go() -> Any:
        try:
            return await import_results(job, results, engine, live_fallback=live_fallback)
        finally:
            engine.close()

    report = _run(go(), job)
    _show(report.lines())
    _next_step(job, report.next, imported=True)
    if report.exit_code is not None:
        _finished(engine, report.exit_code)
        raise typer.Exit(report.exit_code)


@batch_app.command("run")
def run_cmd(
    job: JobArg,
    live_fallback: LiveOpt = False,
    max_wait: Annotated[
        float | None, typer.Option("--max-wait", min=0, help="Seconds to wait for one round before stopping.")
    ] = None,
    poll: Annotated[
        float | None,
        typer.Option("--poll", min=0, help="Seconds between status checks (default: 10 s, growing to 5 min)."),
    ] = None,
) -> None:
    """Submit, poll, collect and go on stage by stage to the outputs; resumes a job stopped anywhere."""
    from tenacity import wait_fixed

    from pipeline.batchjob import DEFAULT_POLL, run

    engine, settings = _load(job)
    last: list[str] = []

    def on_status(current: JobStatus) -> None:
        lines = current.lines()
        if lines[: 1 + len(current.files)] != last[: 1 + len(current.files)]:
            last[:] = lines
            _say("; ".join(line.strip() for line in lines[: 1 + len(current.files)]))

    async def go() -> int:
        client = _batches_client(settings)
        try:
            return await run(
                job,
                client,
                engine,
                poll=wait_fixed(poll) if poll is not None else DEFAULT_POLL,
                max_wait=max_wait,
                live_fallback=live_fallback,
                on_status=on_status,
            )
        finally:
            await client.close()
            engine.close()

    code = _run(go(), job)
    _finished(engine, code)
    raise typer.Exit(code)
