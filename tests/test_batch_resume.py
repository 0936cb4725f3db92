"""A Batch job interrupted between any two steps resumes from JOB/ alone: each request accepted once, none twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from pipeline.batchjob import run
from tests.fakebatch import FakeBatchAPI, Sleeps, failing, make_client
from tests.test_batch_toy import ToyEngine

CHUNKS = [1, 2]  # 3 maps, 1 reduce, 1 briefing; one map fails once, so a follow-up round runs too


class Interrupted(BaseException):
    """Stands in for Ctrl-C or a reboot: not an Exception, so nothing on the way may swallow it."""


def crash_at(step: int, labels: list[str]):  # type: ignore[no-untyped-def]
    def checkpoint(label: str) -> None:
        labels.append(label)
        if len(labels) == step:
            raise Interrupted(label)

    return checkpoint


def attempt(root: Path, step: int) -> tuple[list[str], FakeBatchAPI, Counter[str], int]:
    """Run a job, interrupt it at the step-th boundary, resume it with a fresh engine (state from JOB/ only)."""
    calls: Counter[str] = Counter()
    labels: list[str] = []

    async def interrupted_then_resumed(api: FakeBatchAPI) -> int:
        client = make_client(api)  # the transport only: it holds no job state
        try:
            engine = ToyEngine(root, CHUNKS, calls=calls)
            return await run(root / "job", client, engine, sleep=Sleeps(), checkpoint=crash_at(step, labels))
        except Interrupted:
            return await run(root / "job", client, ToyEngine(root, CHUNKS, calls=calls), sleep=Sleeps())

    with FakeBatchAPI(responder=failing(["a1c0"])) as api:
        code = asyncio.run(interrupted_then_resumed(api))
    return labels, api, calls, code


@pytest.mark.slow
def test_interrupted_at_every_step_and_resumed(tmp_path: Path) -> None:
    clean, api, calls, code = attempt(tmp_path / "clean", step=0)
    assert code == 0 and len(calls) == 5 and len(api.uploads) == 4  # map, map retry + reduce, briefing
    kinds = Counter(label.split(":")[0] for label in clean)
    assert {"prepare", "upload", "create", "poll", "download", "accept", "close", "finish"} <= set(kinds)
    for step in range(1, len(clean) + 1):
        root = tmp_path / f"step{step}"
        labels, api, calls, code = attempt(root, step)
        where = f"interrupted at {labels[step - 1]} (step {step})"
        assert code == 0, where
        assert json.loads((root / "out" / "briefing.json").read_text())["briefing"], where
        assert len(calls) == 5 and set(calls.values()) == {1}, where  # every request accepted exactly once
        assert len(api.uploads) == len(set(api.uploads)) == 4, where  # no file uploaded twice
        inputs = [batch["input_file_id"] for batch in api.created()]
        assert len(inputs) == len(set(inputs)) == 4, where  # no second batch over the same file
        job = json.loads((root / "job" / "job.json").read_text())
        assert job["finished"] and not list((root / "job").glob(".*")), where  # no temporary file left
