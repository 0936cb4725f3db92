"""The job manifest `JOB/job.json`: every piece of Batch job state, written atomically.

A job is a sequence of rounds. A round is the request files written by one `prepare` (the
next stage, plus follow-ups for lines that failed), and moves prepared → submitted →
collected → closed. Each file records its upload and batch ids the moment they are known,
and an intent flag just before, so a resumed job never uploads or creates anything twice.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import BriefError
from pipeline.fsutil import write_atomic
from pipeline.secrets import public_url

SCHEMA_VERSION = 1
MANIFEST = "job.json"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
ROUND_STATES = ("prepared", "submitted", "collected", "closed")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")  # a plain file name inside JOB/, never a path


class BatchJobError(BriefError):
    """A Batch job cannot go on; str(err) is one line naming the job folder or setting at fault."""

    exit_code = 2


class NotReady(BatchJobError):
    """The round's batches are still running: poll again later."""

    exit_code = 1


@dataclass
class FileRecord:
    """One request file of a round and what became of it at the provider."""

    name: str
    stage: str
    lines: int
    bytes: int
    est_prompt_tokens: int = 0
    max_output_tokens: int = 0
    upload_started: bool = False  # set before the upload: on resume, look for the file before uploading again
    file_id: str | None = None
    create_started: bool = False  # set before batches.create: on resume, look for the batch first
    batch_id: str | None = None
    status: str | None = None  # the provider's batch status
    output_file_id: str | None = None
    error_file_id: str | None = None
    request_counts: dict[str, int] | None = None
    batch_errors: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)  # local result files already complete


@dataclass
class RoundRecord:
    """One round of request files, and how its requests ended."""

    number: int
    state: str = "prepared"
    source: str | None = None  # "api" once submitted, "import" once results were imported
    files: list[FileRecord] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)  # names of imported results files
    accepted: int = 0
    live: int = 0
    requeued: int = 0
    failed: int = 0
    junk: int = 0
    unexpected: int = 0  # result lines whose custom_id is not in this round, or already accepted


@dataclass
class StageCounts:
    """Totals for one stage over all rounds."""

    requests: int = 0  # distinct requests written
    sent: int = 0  # lines written, follow-ups included
    est_prompt_tokens: int = 0
    max_output_tokens: int = 0
    accepted: int = 0
    live: int = 0
    failed: int = 0
    requeued: int = 0
    prompt_tokens: int = 0  # as the accepted replies report them (the usage in each result body)
    completion_tokens: int = 0


@dataclass
class Failure:
    """The latest failure of one request; a final one is never sent again."""

    stage: str
    reason: str
    attempts: int
    round: int
    final: bool = False


@dataclass
class Manifest:
    """The whole of `job.json`."""

    job_id: str
    created_at: str
    url: str
    completion_window: str
    max_lines: int
    max_bytes: int
    max_attempts: int
    version: int = SCHEMA_VERSION
    endpoint: str | None = None  # where the batches live, without credentials
    models: list[str] = field(default_factory=list)
    stages: dict[str, StageCounts] = field(default_factory=dict)
    rounds: list[RoundRecord] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)
    finished: bool = False
    exit_code: int | None = None

    def open_round(self) -> RoundRecord | None:
        """The last round unless it is closed."""
        if self.rounds and self.rounds[-1].state != "closed":
            return self.rounds[-1]
        return None

    def final_failures(self) -> set[str]:
        return {key for key, failure in self.failures.items() if failure.final}

    def usage(self) -> tuple[int, int, int]:
        """Requests sent (batch lines and live), prompt and completion tokens, over every stage."""
        stages = self.stages.values()
        return (
            sum(c.sent + c.live for c in stages),
            sum(c.prompt_tokens for c in stages),
            sum(c.completion_tokens for c in stages),
        )


def new_manifest(*, url: str, completion_window: str, max_lines: int, max_bytes: int, max_attempts: int) -> Manifest:
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    return Manifest(
        job_id=uuid.uuid4().hex[:12],
        created_at=now,
        url=url,
        completion_window=completion_window,
        max_lines=max_lines,
        max_bytes=max_bytes,
        max_attempts=max_attempts,
    )


def redact_endpoint(url: str) -> str:
    """Drop user info, query and fragment: whatever might carry a credential."""
    return (public_url(url) or "").rstrip("/")


def save(job_dir: Path, manifest: Manifest) -> None:
    """Write job.json atomically: a temporary file in the same folder, flushed, then os.replace."""
    data = json.dumps(asdict(manifest), ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    # Unchanged (a poll that saw no news): write_atomic spares the disk a write and an fsync.
    write_atomic(job_dir / MANIFEST, data, durable=True)


def load(job_dir: Path) -> Manifest:
    """Read job.json; a missing or damaged manifest is a BatchJobError naming the file."""
    path = job_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BatchJobError(f"{path}: no Batch job here (run `brief batch prepare` first)") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise BatchJobError(f"{path}: cannot read the job manifest ({err})") from None
    try:
        manifest = _manifest(data)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise BatchJobError(f"{path}: damaged job manifest ({type(err).__name__}: {err})") from None
    if manifest.version != SCHEMA_VERSION:
        raise BatchJobError(f"{path}: job manifest version {manifest.version}, this brief reads {SCHEMA_VERSION}")
    return manifest


def _pick(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} must be an object")
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def _manifest(data: dict[str, Any]) -> Manifest:
    plain = _pick(Manifest, data)
    rounds = [_round(item) for item in plain.pop("rounds", [])]
    stages = {str(k): StageCounts(**_pick(StageCounts, v)) for k, v in plain.pop("stages", {}).items()}
    failures = {str(k): Failure(**_pick(Failure, v)) for k, v in plain.pop("failures", {}).items()}
    manifest = Manifest(**plain, rounds=rounds, stages=stages, failures=failures)
    for rnd in manifest.rounds:
        if rnd.state not in ROUND_STATES:
            raise ValueError(f"round {rnd.number} has unknown state {rnd.state!r}")
    return manifest


def _round(data: dict[str, Any]) -> RoundRecord:
    plain = _pick(RoundRecord, data)
    files = [FileRecord(**_pick(FileRecord, item)) for item in plain.pop("files", [])]
    for record in files:
        for name in (record.name, *record.downloaded):
            if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name):
                raise ValueError(f"file name {name!r} is not a plain name inside the job folder")
    return RoundRecord(**plain, files=files)
