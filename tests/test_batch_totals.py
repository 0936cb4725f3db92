"""What a finished job reports: run.json's tokens are the imported replies' usage, and --strict outlives a resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.batchjob.pipeline_engine import INPUTS, load_inputs
from tests.fakebatch import write_results
from tests.responders import prompt_kind, scripted_model
from tests.test_batch_e2e import brief, chat, clean_env, import_until_done, open_files, prepare, runner, two_seeds

__all__ = ["chat", "clean_env", "runner"]  # fixtures, used by name

UNVERIFIABLE = " Revenue reached 4321 billion yuan."  # a figure no seed has: the number check flags it


def with_usage(path: Path, number: int) -> tuple[int, int]:
    """Give every answered line of a results file its own usage; return the prompt and completion sums."""
    lines = [json.loads(raw) for raw in path.read_bytes().splitlines() if raw.strip()]
    prompt = completion = 0
    for index, line in enumerate(lines):
        body = (line.get("response") or {}).get("body")
        if isinstance(body, dict) and "choices" in body:
            usage = {"prompt_tokens": 1000 + 37 * index + number, "completion_tokens": 50 + index % 11}
            body["usage"] = {**usage, "total_tokens": sum(usage.values())}
            prompt, completion = prompt + usage["prompt_tokens"], completion + usage["completion_tokens"]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return prompt, completion


@pytest.mark.slow
def test_run_json_tokens_are_the_usage_of_the_imported_replies(runner: CliRunner, chat: Any, tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert prepare(runner, job, chat.base_url, tmp_path / "cache", two_seeds(tmp_path)).exit_code == 0
    sums, lines, per_stage = [0, 0], 0, {}
    for number in range(10):
        names = open_files(job)
        if not names:
            break
        for name in names:
            results = tmp_path / f"results-{number}-{name}"
            lines += write_results(job / name, results, scripted_model, shape="vllm")
            prompt, completion = with_usage(results, number)
            sums = [sums[0] + prompt, sums[1] + completion]
            stage = name.removeprefix("requests-").removesuffix(".jsonl").split("-")[0]
            per_stage[stage] = [a + b for a, b in zip(per_stage.get(stage, [0, 0]), (prompt, completion), strict=True)]
            result = brief(runner, "batch", "import", job, results)
            assert result.exit_code == 0, result.output
    assert "outputs written" in result.stdout and len(per_stage) >= 3  # map, repair or reduce, briefing
    totals = json.loads((job / "out" / "run.json").read_text())["totals"]
    assert (totals["prompt_tokens"], totals["completion_tokens"]) == tuple(sums)
    assert totals["requests"] == lines  # every line sent was accepted
    stages = json.loads((job / "job.json").read_text())["stages"]
    assert {name: [c["prompt_tokens"], c["completion_tokens"]] for name, c in stages.items()} == per_stage


def unverifiable(body: dict[str, Any]) -> str:
    """scripted_model, except that summaries state a figure the article lacks (a repair keeps it)."""
    reply = json.loads(scripted_model(body))
    if prompt_kind(body) in ("map", "reduce"):
        reply["summary"] += UNVERIFIABLE
    return json.dumps(reply, ensure_ascii=False)


@pytest.mark.parametrize(
    ("flag", "env_at_prepare", "env_at_resume", "strict"),
    [
        ("--strict", None, None, True),  # the flag is kept when the shell that resumes has no BRIEF_STRICT
        (None, "1", None, True),  # BRIEF_STRICT at prepare is kept too
        (None, None, "1", False),  # what was recorded wins over a later environment
    ],
)
def test_strict_is_recorded_and_honoured_when_the_job_resumes(
    runner: CliRunner,
    chat: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flag: str | None,
    env_at_prepare: str | None,
    env_at_resume: str | None,
    strict: bool,
) -> None:
    job = tmp_path / "job"
    if env_at_prepare is not None:
        monkeypatch.setenv("BRIEF_STRICT", env_at_prepare)
    args = ["batch", "prepare", two_seeds(tmp_path), "--out", job, "--base-url", chat.base_url, "--model", "fake-qwen"]
    prepared = brief(runner, *args, "--cache-dir", tmp_path / "cache", *([flag] if flag else []))
    assert prepared.exit_code == 0, prepared.output
    assert json.loads((job / INPUTS).read_text())["strict"] is strict
    monkeypatch.delenv("BRIEF_STRICT", raising=False)
    if env_at_resume is not None:
        monkeypatch.setenv("BRIEF_STRICT", env_at_resume)
    result, _ = import_until_done(runner, job, unverifiable)
    rows = json.loads((job / "out" / "run.json").read_text())["inputs"]
    assert all(row["documents"] for row in rows)  # every article was summarised; only --strict decides
    if strict:
        assert result.exit_code == 1, result.output
        assert all(row["status"] == "failed" and "(--strict)" in row["error"] for row in rows)
    else:
        assert result.exit_code == 0, result.output
        assert all(row["status"] == "ok" for row in rows)
        assert "4321 billion" in (job / "out" / "briefing.md").read_text()


def test_a_job_recorded_before_strict_existed_is_not_strict(tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    recorded = {
        "paths": ["news"],
        "cwd": str(tmp_path),
        "model": "m",
        "base_url": "http://127.0.0.1:9/v1",
        "json_mode": "schema",
        "max_chunk_tokens": 300,
        "max_output_tokens": 800,
        "temperature": 0.0,
        "cache_dir": str(tmp_path / "cache"),
        "out_dir": str(job / "out"),
        "version": 1,
    }
    (job / INPUTS).write_text(json.dumps(recorded))
    inputs = load_inputs(job)
    assert inputs.strict is False and inputs.flags()["strict"] is False
