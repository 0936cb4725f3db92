"""The pipeline as a Batch job's stage engine: deferred runs list the requests, accepted replies land in the cache.

Each `pending()` runs the whole pipeline with deferral on: every cache miss is recorded instead of
sent, written to a spool on disk as it is found (spool.py), so memory keeps ids, not request texts.
Stages emerge by themselves: once the map replies are cached, the next run reaches the merges of
multi-chunk articles, then the briefing. A reply is accepted exactly as a live one would
be (schema, content check, salvage rules) and stored under its cache key, so `finish()`, and any
later `brief summarize` over the same inputs and cache, finds every reply there and sends nothing.

What a job needs to run again after a reboot (the inputs, the settings that decide the requests,
the output folder; never the API key) is `JOB/inputs.json`, written once by `create_job`.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.batchjob.engine import BatchRequest, LiveOutcome, LiveReply
from pipeline.batchjob.job import failed_requests
from pipeline.batchjob.manifest import MANIFEST, BatchJobError, load
from pipeline.batchjob.spool import PendingRequests, RequestSpool
from pipeline.errors import BriefError, ConfigError, ModelError
from pipeline.secrets import public_url

if TYPE_CHECKING:
    from pipeline.app import PreparedRun
    from pipeline.config import Settings
    from pipeline.model.client import JsonRequest, ModelClient
    from pipeline.run_report import RunReport

INPUTS = "inputs.json"
INPUTS_VERSION = 1
Notify = Callable[[str], None]
_STAGE = re.compile(r"[a-z0-9_]{1,40}")


def _quiet(message: str) -> None:
    """Say nothing (deferred runs after the first would repeat its notices)."""


@dataclass(frozen=True)
class JobInputs:
    """`JOB/inputs.json`: the inputs and every setting that decides the requests or where outputs go."""

    paths: tuple[str, ...]  # as the user gave them: sources in the outputs read the same as `brief summarize`'s
    cwd: str  # where they were given, to find them from anywhere later
    model: str
    base_url: str  # without credentials (the key comes from the environment at each step)
    json_mode: str
    max_chunk_tokens: int
    max_output_tokens: int
    temperature: float
    cache_dir: str
    out_dir: str
    version: int = INPUTS_VERSION
    strict: bool = False  # --strict: an article with unverified statements fails (a job made before it: False)

    @classmethod
    def of(cls, settings: Settings, paths: Sequence[str], cwd: Path, out_dir: Path) -> JobInputs:
        """Record a new job's inputs; a job needs files, a named model, an endpoint and a cache."""
        if not paths or "-" in paths:
            raise ConfigError("a batch job reads files and folders (not - for stdin)")
        if not settings.base_url or settings.offline:
            raise ConfigError(
                "a batch job needs an endpoint: --base-url or OPENAI_BASE_URL (OPENAI_API_KEY alone means OpenAI)"
            )
        if not settings.model:
            raise ConfigError("a batch job needs a model name: --model or BRIEF_MODEL (it goes into every request)")
        if settings.cache_dir is None:
            raise ConfigError("a batch job keeps its replies in the cache: drop --no-cache")
        return cls(
            paths=tuple(paths),
            cwd=str(cwd.resolve()),
            model=settings.model,
            base_url=public_url(settings.base_url) or settings.base_url,
            # A batch cannot step down a JSON mode line by line: auto means schema (and no live probe of the endpoint).
            json_mode="schema" if settings.json_mode == "auto" else settings.json_mode,
            max_chunk_tokens=settings.max_chunk_tokens,
            max_output_tokens=settings.max_output_tokens,
            temperature=settings.temperature,
            cache_dir=str(Path(settings.cache_dir).expanduser().resolve()),
            out_dir=str(out_dir.expanduser().resolve()),
            strict=settings.strict,
        )

    def flags(self) -> dict[str, Any]:
        """The recorded settings as flags: they win over the environment, which still gives the key and limits."""
        names = ("model", "base_url", "json_mode", "max_chunk_tokens", "max_output_tokens", "temperature", "strict")
        flags: dict[str, Any] = {name: getattr(self, name) for name in names}
        flags["cache_dir"], flags["out_dir"] = Path(self.cache_dir), Path(self.out_dir)
        flags["offline"] = False  # BRIEF_OFFLINE in a later shell must not turn the outputs into keyword triage
        return flags

    def sources(self) -> list[str]:
        """The paths as given when run from the same folder, else anchored to where they were given."""
        if os.path.realpath(os.getcwd()) == os.path.realpath(self.cwd):
            return list(self.paths)
        return [path if os.path.isabs(path) else os.path.join(self.cwd, path) for path in self.paths]

    def same_job(self, other: JobInputs) -> bool:
        def key(item: JobInputs) -> tuple[Any, ...]:
            absolute = tuple(os.path.realpath(os.path.join(item.cwd, path)) for path in item.paths)
            return (absolute, *(getattr(item, f.name) for f in fields(item) if f.name not in ("paths", "cwd")))

        return key(self) == key(other)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["paths"] = list(self.paths)
        return data

    @classmethod
    def from_json(cls, data: Any) -> JobInputs:
        if not isinstance(data, dict):
            raise TypeError("not an object")
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["paths"] = tuple(str(path) for path in values["paths"])
        inputs = cls(**values)
        if inputs.version != INPUTS_VERSION:
            raise ValueError(f"version {inputs.version}, this brief reads {INPUTS_VERSION}")
        return inputs


def load_inputs(job_dir: Path) -> JobInputs:
    """Read `JOB/inputs.json`; a missing or damaged one is a BatchJobError naming the file."""
    path = job_dir / INPUTS
    try:
        return JobInputs.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise BatchJobError(
            f"{path}: no brief batch job here (run `brief batch prepare PATH… --out {job_dir}`)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as err:
        raise BatchJobError(f"{path}: damaged job inputs ({type(err).__name__}: {err})") from None


def create_job(job_dir: Path, inputs: JobInputs) -> None:
    """Write `JOB/inputs.json` for a new job; an existing job must be over the same inputs and settings."""
    if (job_dir / INPUTS).exists():
        if not load_inputs(job_dir).same_job(inputs):
            raise BatchJobError(
                f"{job_dir}: holds a job over other inputs or settings (`brief batch status {job_dir}`); "
                "choose another --out for a new job"
            )
        return
    if (job_dir / MANIFEST).exists():
        raise BatchJobError(f"{job_dir}: holds a Batch job that brief's pipeline did not make; choose another --out")
    job_dir.mkdir(parents=True, exist_ok=True)
    temp = job_dir / f".{INPUTS}.tmp"
    temp.write_text(json.dumps(inputs.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(temp, job_dir / INPUTS)


def stage_of(prompt_id: str) -> str:
    """The stage a request belongs to, from its prompt id: map.v1 → map, reduce.v1 → reduce, briefing.v1 → briefing."""
    name = prompt_id.partition(".")[0].lower()
    return name if _STAGE.fullmatch(name) else "other"


def prompt_tokens(messages: Sequence[dict[str, str]]) -> int:
    """Our tokenizer's estimate of a request's prompt (message texts; the few tokens of framing left out)."""
    from pipeline.ingest.tokens import count_tokens

    return sum(count_tokens(str(message.get("content", ""))) for message in messages)


class BatchRequestFailed(ModelError):
    """A request of the job failed for good (its reason says why): the article or briefing it served is an error."""


class _Unanswered(dict[str, "JsonRequest"]):
    """The client's deferral record while outputs are written: a miss there is a request the job never got.

    ModelClient records a miss with `deferred.setdefault(key, request)`; raising here instead turns
    the miss into an error that names the job's reason, and keeps it from being sent live.
    """

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__()
        self.reasons = reasons

    def setdefault(self, key: str, default: JsonRequest, /) -> JsonRequest:  # type: ignore[override]
        reason = self.reasons.get(key, "no reply was collected for it")
        raise BatchRequestFailed(f"{default.prompt_id}: the batch job got no valid reply ({reason})")


class PipelineEngine:
    """A StageEngine over one job folder: the pipeline with deferral on, the model cache as the store."""

    def __init__(self, job_dir: Path, inputs: JobInputs, settings: Settings, notify: Notify = _quiet) -> None:
        self.job_dir = job_dir
        self.inputs = inputs
        self.settings = settings
        self.notify = notify
        self.report: RunReport | None = None  # the outputs' run, once finish() ran
        self._noticed = False
        self._listing: PendingRequests | None = None  # of the latest deferred run: answers accept()
        self._fresh = False  # that listing, less `_answered`, is still what the pipeline needs
        self._answered: set[str] = set()  # briefings accepted since: the last request of a run opens no other
        self._client: ModelClient | None = None  # of the latest run: builds bodies, stores replies

    async def _prepare(self, *, defer: bool) -> PreparedRun:
        from pipeline.app import prepare_run

        # Deferred runs repeat themselves: their notices are shown once; the outputs' run reports its failures.
        notify = self.notify if not (defer and self._noticed) else _quiet
        self._noticed = True
        out_dir = None if defer else Path(self.inputs.out_dir)
        return await prepare_run(
            self.settings, self.inputs.sources(), io.BytesIO(), out_dir, notify, defer=defer, probe=False
        )

    def _adopt(self, client: ModelClient | None) -> None:
        """Keep the latest run's client (and its cache connection); close the one before."""
        if self._client is not None and self._client is not client and self._client.cache is not None:
            self._client.cache.close()
        self._client = client

    def _replace_listing(self, listing: PendingRequests | None) -> None:
        if self._listing is not None:
            self._listing.close()
        self._listing, self._fresh = listing, listing is not None
        self._answered.clear()

    async def pending(self) -> PendingRequests:
        if self._listing is None or not self._fresh:
            spool = await self._list()
            self._replace_listing(spool.close())
        assert self._listing is not None
        listing = self._listing.without(answered=self._answered) if self._answered else self._listing
        # A deferred run asks for a briefing over the articles finished so far; the real one comes
        # once every other request is answered or has failed for good (which can change without a run).
        final = failed_requests(self.job_dir) if (self.job_dir / MANIFEST).exists() else {}
        if any(stage != "briefing" and key not in final for key, stage in listing.stages().items()):
            return listing.without(stages=("briefing",))
        return listing

    async def _list(self, keep: Collection[str] = ()) -> RequestSpool:
        """Run the pipeline with deferral on; its cache misses go to a spool in the job folder."""
        self._adopt(None)
        prepared = await self._prepare(defer=True)
        client = prepared.session.client
        assert client is not None  # prepare_run(defer=True) guarantees one

        def describe(request: JsonRequest) -> tuple[str, dict[str, Any], int]:
            body = client.body(request, request.messages, request.max_tokens, client.json_mode)
            return stage_of(request.prompt_id), body, prompt_tokens(request.messages)

        spool = RequestSpool(self.job_dir, describe, keep)
        client.deferred = spool
        try:
            await prepared.run()
        except BaseException:
            spool.close().close()
            raise
        finally:
            self._adopt(client)
        return spool

    def accept(self, custom_id: str, body: dict[str, Any]) -> str | None:
        from pipeline.model.backends import Transient
        from pipeline.model.backends.openai_http import parse_completion
        from pipeline.model.client import combined_check
        from pipeline.model.validate import check_reply
        from pipeline.records import Usage

        request = self._listing.request(custom_id) if self._listing is not None else None
        client = self._client
        if request is None or client is None:
            return "not a request this job is waiting for"
        if client.cache is None:
            return "no cache to keep the reply in"
        try:
            reply = parse_completion(body)
        except Transient as err:
            return f"not a chat completion: {err}"
        if reply.finish_reason == "length":
            return f"reply cut at its output budget of {request.max_tokens} tokens (finish_reason length)"
        # Both content rules, as on a live first attempt: a reply still in Chinese goes to the follow-up round.
        verdict = check_reply(reply.content, request.schema, combined_check(request), request.salvageable)
        if verdict.data is None:
            return verdict.problem or "invalid reply"
        usage = Usage(requests=1, prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)
        client.store(custom_id, request, verdict.data, usage)
        if client.cache.get(custom_id) is None:  # put never raises: an unwritable cache shows here
            return f"the reply could not be stored in the cache {self.inputs.cache_dir}"
        if self._listing is not None and self._listing.stages().get(custom_id) == "briefing":
            self._answered.add(custom_id)  # nothing comes after a briefing: no deferred run needed to know that
        else:
            self._fresh = False  # the next stage may be reachable now: list again
        return None

    async def send_live(self, requests: Sequence[BatchRequest]) -> dict[str, LiveOutcome]:
        wanted = [r.custom_id for r in requests]
        # The spool keeps no messages: one more deferred run keeps these requests whole.
        spool = await self._list(keep=wanted)
        self._replace_listing(spool.close())
        client = self._client
        assert client is not None
        known = spool.kept

        async def one(custom_id: str) -> LiveOutcome:
            request = known.get(custom_id)
            if request is None:
                return "not a request this job is waiting for"
            try:
                result = await client.complete_json(request)
            except BriefError as err:
                return str(err)
            return LiveReply(result.usage.prompt_tokens, result.usage.completion_tokens)

        client.deferred = None
        try:
            answers = await asyncio.gather(*(one(custom_id) for custom_id in wanted))
        finally:
            client.deferred = {}
            await client.aclose()
            self._fresh = False
        return dict(zip(wanted, answers, strict=True))

    async def finish(self) -> int:
        self._adopt(None)
        self._replace_listing(None)
        prepared = await self._prepare(defer=False)
        client = prepared.session.client
        if client is None:  # settings recorded with an endpoint never go offline; guard the outputs anyway
            await prepared.session.close()
            raise ConfigError("a batch job's outputs need its model endpoint; the run went offline")
        job = load(self.job_dir)
        client.deferred = _Unanswered({key: f.reason for key, f in job.failures.items() if f.final})
        # Every reply is a cache hit now: run.json's requests and tokens are what the job's batches cost.
        client.stats.requests, client.stats.prompt_tokens, client.stats.completion_tokens = job.usage()
        try:
            self.report = await prepared.run()
        finally:
            self._adopt(client)
        return self.report.exit_code

    def close(self) -> None:
        """Close the cache connection and the spool of the latest run."""
        self._adopt(None)
        self._replace_listing(None)
