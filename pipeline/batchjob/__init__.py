"""Run the pipeline's model stages as OpenAI-Batch-format jobs (OpenAI, DashScope, `vllm run-batch`, old SGLang)."""

from __future__ import annotations

from pipeline.batchjob.engine import STAGES, BatchRequest, LiveReply, StageEngine, StageIndex
from pipeline.batchjob.job import cancel, collect, failed_requests, import_results, prepare, status, submit
from pipeline.batchjob.loop import DEFAULT_POLL, run
from pipeline.batchjob.manifest import BatchJobError, NotReady
from pipeline.batchjob.report import CollectReport, JobStatus, PrepareSummary

__all__ = [
    "DEFAULT_POLL",
    "STAGES",
    "BatchJobError",
    "BatchRequest",
    "CollectReport",
    "JobStatus",
    "LiveReply",
    "NotReady",
    "PrepareSummary",
    "StageEngine",
    "StageIndex",
    "cancel",
    "collect",
    "failed_requests",
    "import_results",
    "prepare",
    "run",
    "status",
    "submit",
]
