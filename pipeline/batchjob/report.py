"""What the Batch job steps return: plain records, each able to describe itself in a few lines for the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.batchjob.manifest import TERMINAL, FileRecord, StageCounts
from pipeline.batchjob.rounds import ApplyReport, CloseReport


@dataclass
class StageEstimate:
    """One stage of a round: how many requests and (estimated) tokens it will cost."""

    stage: str
    requests: int = 0
    retries: int = 0  # of which follow-ups for lines that failed in the previous round
    est_prompt_tokens: int = 0
    max_output_tokens: int = 0  # the sum of max_tokens: an upper bound on completion tokens
    files: list[str] = field(default_factory=list)


@dataclass
class PrepareSummary:
    """The round `prepare` wrote (new) or found open; round None means nothing is left to send."""

    job_dir: Path
    round: int | None
    new: bool
    stages: list[StageEstimate] = field(default_factory=list)
    skipped_failed: int = 0  # pending requests that failed for good and are not sent again

    @property
    def requests(self) -> int:
        return sum(stage.requests for stage in self.stages)

    @property
    def est_prompt_tokens(self) -> int:
        return sum(stage.est_prompt_tokens for stage in self.stages)

    def lines(self) -> list[str]:
        if self.round is None:
            tail = f" ({self.skipped_failed} failed for good)" if self.skipped_failed else ""
            return [f"{self.job_dir}: nothing left to send{tail}"]
        verb = "wrote" if self.new else "already prepared"
        out = [f"{self.job_dir}: round {self.round} {verb}: {self.requests:,} requests"]
        for stage in self.stages:
            retries = f" ({stage.retries:,} follow-ups)" if stage.retries else ""
            out.append(
                f"  {stage.stage}: {stage.requests:,} requests{retries}, ~{stage.est_prompt_tokens:,} prompt tokens, "
                f"≤{stage.max_output_tokens:,} completion tokens, {len(stage.files)} file(s): {', '.join(stage.files)}"
            )
        return out


@dataclass
class FileStatus:
    """One request file's batch as last seen."""

    name: str
    stage: str
    lines: int
    batch_id: str | None
    status: str | None
    completed: int | None = None
    failed: int | None = None


def file_status(record: FileRecord) -> FileStatus:
    counts = record.request_counts or {}
    return FileStatus(
        name=record.name,
        stage=record.stage,
        lines=record.lines,
        batch_id=record.batch_id,
        status=record.status,
        completed=counts.get("completed"),
        failed=counts.get("failed"),
    )


@dataclass
class JobStatus:
    """The open round's batches and the job's totals."""

    round: int | None
    state: str
    files: list[FileStatus] = field(default_factory=list)
    stages: dict[str, StageCounts] = field(default_factory=dict)
    failed: int = 0
    exit_code: int | None = None

    @property
    def done(self) -> bool:
        """Every batch of the round has finished (completed, failed, expired or cancelled)."""
        return bool(self.files) and all(item.status in TERMINAL for item in self.files)

    def lines(self) -> list[str]:
        head = f"round {self.round}: {self.state}" if self.round is not None else self.state
        out = [head + (f", exit code {self.exit_code}" if self.exit_code is not None else "")]
        for item in self.files:
            progress = f" {item.completed or 0}/{item.lines} done, {item.failed or 0} failed" if item.batch_id else ""
            out.append(f"  {item.name}: {item.status or 'not submitted'}{progress}")
        for stage, counts in self.stages.items():
            tokens = f"{counts.prompt_tokens:,} prompt + {counts.completion_tokens:,} completion tokens"
            out.append(
                f"  {stage}: {counts.requests:,} requests, {counts.accepted:,} accepted, {counts.live:,} live, "
                f"{counts.failed:,} failed for good; {tokens}"
            )
        return out


@dataclass
class CollectReport:
    """What collect or import did: lines read, requests settled, and the next round (or the exit code)."""

    round: int
    lines_read: int = 0
    junk: int = 0
    junk_samples: list[str] = field(default_factory=list)
    accepted: int = 0
    failed_lines: int = 0
    unexpected: int = 0
    missing: int = 0
    unresolved: int = 0
    closed: CloseReport | None = None
    next: PrepareSummary | None = None
    exit_code: int | None = None

    @classmethod
    def of(cls, applied: ApplyReport | None, *, closed: CloseReport | None) -> CollectReport:
        number = applied.round if applied is not None else closed.round if closed is not None else 0
        report = cls(round=number, closed=closed)
        if applied is not None:
            report.lines_read, report.junk = applied.stats.lines, applied.stats.junk
            report.junk_samples = list(applied.stats.junk_samples)
            report.accepted, report.failed_lines = applied.accepted, applied.failed
            report.unexpected, report.missing, report.unresolved = (
                applied.unexpected,
                applied.missing,
                applied.unresolved,
            )
        return report

    def lines(self) -> list[str]:
        out = [
            f"round {self.round}: {self.lines_read:,} lines, {self.accepted:,} accepted, {self.failed_lines:,} failed, "
            f"{self.missing:,} missing, {self.junk:,} junk, {self.unexpected:,} not for this round"
        ]
        out += [f"  junk: {sample}" for sample in self.junk_samples]
        if self.unresolved:
            out.append(f"  {self.unresolved:,} requests still have no result: import the rest")
        if self.closed is not None:
            c = self.closed
            out.append(f"  closed: {c.live:,} sent live, {c.requeued:,} queued again, {c.failed:,} failed for good")
        if self.next is not None:
            out += self.next.lines()
        if self.exit_code is not None:
            out.append(f"outputs written, exit code {self.exit_code}")
        return out
