"""`brief batch …` end to end over the seeds: the real openai client against the fake Files + Batches API, and
results files in the `vllm run-batch` shape, give the same outputs as `brief summarize`."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.ingest.chunk import chunk_document
from pipeline.ingest.documents import document_id, ingest
from pipeline.ingest.tokens import default_counter
from tests.brief_args import summarize_args
from tests.fakebatch import FakeBatchAPI, LineFailure, answer_line, write_results
from tests.fakeserver import FakeOpenAI
from tests.responders import prompt_kind, scripted_model

assert any(group.name == "batch" for group in app.registered_groups)  # `brief batch` is part of the CLI

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
CHUNK_TOKENS = 300  # most seeds need several chunks, and their merges two levels
MODEL = "fake-qwen"
SECRET = "sk-batch-VERY-DISTINCT-7319"
USAGE = ("requests", "cache_hits", "prompt_tokens", "completion_tokens", "elapsed_s")
Responder = Callable[[dict[str, Any]], str]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the developer's environment or config file leaks into a test run."""
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_API_KEY", "BRIEF_MODEL", "BRIEF_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("BRIEF_CACHE_DIR", "BRIEF_OUT", "BRIEF_CONCURRENCY", "BRIEF_JSON_MODE", "BRIEF_MAX_CHUNK_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty-config.toml").touch()
    monkeypatch.setenv("BRIEF_CONFIG", str(tmp_path / "empty-config.toml"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture()
def chat() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def brief(runner: CliRunner, *args: str | Path) -> Any:
    return runner.invoke(app, [str(arg) for arg in args])


def summarize_seeds(runner: CliRunner, base_url: str, root: Path) -> Path:
    result = brief(runner, *summarize_args(base_url, root, str(SEEDS), chunk_tokens=CHUNK_TOKENS))
    assert result.exit_code == 0, result.output
    return root / "out"


def prepare(runner: CliRunner, job: Path, base_url: str, cache: Path, source: Path = SEEDS) -> Any:
    args = ["batch", "prepare", source, "--out", job, "--base-url", base_url, "--model", MODEL, "--cache-dir", cache]
    return brief(runner, *args, "--max-chunk-tokens", str(CHUNK_TOKENS))


def two_seeds(root: Path) -> Path:
    """A smaller folder for the tests that need no comparison with the whole seeds: one long, one short article."""
    folder = root / "news"
    folder.mkdir()
    for name in ("000_35dc785b65d2bec5.txt", "002_e506a97cba6d166a.txt"):
        (folder / name).write_bytes((SEEDS / name).read_bytes())
    return folder


def expected_map_requests() -> int:
    """One map request per chunk, counted with the ingest and chunk stages directly."""
    count = default_counter()
    return sum(
        len(chunk_document(doc, CHUNK_TOKENS, count))
        for path in sorted(SEEDS.glob("*.txt"))
        for doc in ingest(path.read_bytes(), str(path), document_id(path.name))
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_bytes().splitlines() if raw.strip()]


def open_files(job: Path) -> list[str]:
    manifest = json.loads((job / "job.json").read_text())
    last = manifest["rounds"][-1] if manifest["rounds"] else None
    return [f["name"] for f in last["files"]] if last and last["state"] != "closed" else []


@functools.cache
def chunk_heads(name: str) -> tuple[str, ...]:
    """The opening of every chunk of one seed file, from the ingest and chunk stages directly."""
    path = SEEDS / f"{name}.txt"
    docs = ingest(path.read_bytes(), str(path), document_id(path.name))
    count = default_counter()
    return tuple(chunk.text.strip()[:40] for doc in docs for chunk in chunk_document(doc, CHUNK_TOKENS, count))


def is_map_of(body: dict[str, Any], name: str) -> bool:
    """Whether a request is a map request over a chunk of this seed file."""
    if prompt_kind(body) != "map":
        return False
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    article = user.partition("<article>")[2]
    return any(head in article for head in chunk_heads(name))


def without_usage(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != "usage"}


def comparable_run(manifest: dict[str, Any]) -> dict[str, Any]:
    """run.json without timings, endpoint and request counters (a batch run's replies are all cache hits)."""
    drop = {"started", "elapsed_s", "endpoint", "client"}
    data = {key: value for key, value in manifest.items() if key not in drop}
    data["inputs"] = [{k: v for k, v in row.items() if k not in USAGE} for row in data["inputs"]]
    data["totals"] = {k: v for k, v in data["totals"].items() if k not in USAGE}
    return data


def assert_same_outputs(expected: Path, got: Path) -> None:
    names = sorted(p.name for p in expected.iterdir())
    assert names == sorted(p.name for p in got.iterdir())
    assert "briefing.md" in names and len([n for n in names if n.endswith(".md")]) == 7
    for name in names:
        want, have = (expected / name).read_bytes(), (got / name).read_bytes()
        if name == "run.json":
            assert comparable_run(json.loads(have)) == comparable_run(json.loads(want))
        elif name == ".brief-outputs":
            assert sorted(have.splitlines()) == sorted(want.splitlines())
        elif name.endswith(".json") and name != "glossary.json":
            assert without_usage(json.loads(have)) == without_usage(json.loads(want)), name
        else:
            assert have == want, name


def fail_first(name: str, times: int | None = 1) -> Responder:
    """scripted_model, except that map requests of seed `name` fail: the first one `times` times, or all always."""
    state: dict[str, Any] = {"target": None, "left": times}

    def respond(body: dict[str, Any]) -> str:
        if is_map_of(body, name):
            text = json.dumps(body["messages"], sort_keys=True)
            state["target"] = state["target"] or text
            if times is None or (text == state["target"] and state["left"] > 0):
                state["left"] = (state["left"] or 0) - 1
                raise LineFailure(500, f"could not answer {name}")
        return scripted_model(body)

    return respond


def import_until_done(runner: CliRunner, job: Path, responder: Responder, *extra: str) -> tuple[Any, list[str]]:
    """What a user with a GPU box does: `vllm run-batch` each open file, import the results, until finished."""
    imported: list[str] = []
    for attempt in range(20):
        for name in open_files(job):
            results = job.parent / f"results-{attempt}-{name}"
            write_results(job / name, results, responder, shape="vllm", seed=attempt)
            imported.append(name)
            result = brief(runner, "batch", "import", job, results, *extra)
            if "outputs written" in result.stdout:
                return result, imported
            assert result.exit_code == 0, result.output
    raise AssertionError("the job did not finish")


@pytest.mark.slow
def test_run_through_the_batches_api_matches_summarize_and_leaves_nothing_to_send(runner, chat, tmp_path, monkeypatch):
    expected = summarize_seeds(runner, chat.base_url, tmp_path / "live")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    job, cache = tmp_path / "job", tmp_path / "batch-cache"
    with FakeBatchAPI(responder=fail_first("003_5cb4fd5a6fe695d5")) as api:
        prepared = prepare(runner, job, api.base_url, cache)
        assert prepared.exit_code == 0, prepared.output
        assert f"map: {expected_map_requests()} requests" in prepared.stdout
        assert [p.name for p in job.glob("requests-*.jsonl")] == ["requests-map.jsonl"]
        result = brief(runner, "batch", "run", job, "--poll", "0")
        uploads = [name.split("-", 1)[1] for name in api.uploads]
    assert result.exit_code == 0, result.output
    # map, then the failed line again beside the first merges, …, the briefing last
    assert uploads[0] == "requests-map.jsonl" and uploads[-1] == "requests-briefing.jsonl"
    assert "requests-map-retry1.jsonl" in uploads and "requests-reduce.jsonl" in uploads
    retried = lines(job / "requests-map-retry1.jsonl")
    assert len(retried) == 1 and is_map_of(retried[0]["body"], "003_5cb4fd5a6fe695d5")
    assert_same_outputs(expected, job / "out")
    for path in job.rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path
    with FakeOpenAI() as after:  # a normal run over the job's cache, in the job's JSON mode (auto probes a new server)
        args = summarize_args(after.base_url, tmp_path / "again", str(SEEDS), chunk_tokens=CHUNK_TOKENS)
        again = brief(
            runner, *args[: args.index("--cache-dir")], "--cache-dir", cache, *args[-2:], "--json-mode", "schema"
        )
        sent = after.bodies()
    assert again.exit_code == 0 and sent == []
    assert_same_outputs(expected, tmp_path / "again" / "out")


def test_a_cached_folder_needs_no_request_file_and_no_traffic(runner, chat, tmp_path):
    expected = summarize_seeds(runner, chat.base_url, tmp_path)
    sent_live = len(chat.bodies())
    job = tmp_path / "job"
    with FakeBatchAPI(responder=scripted_model) as api:
        prepared = prepare(runner, job, api.base_url, tmp_path / "cache")
        assert prepared.exit_code == 0, prepared.output
        assert "nothing left to send" in prepared.stdout
        assert list(job.glob("requests-*")) == []
        result = brief(runner, "batch", "run", job, "--poll", "0")
        traffic = [entry for entry in api.log if "/files" in entry[1] or "/batches" in entry[1]]
    assert result.exit_code == 0, result.output
    assert traffic == [] and len(chat.bodies()) == sent_live
    assert_same_outputs(expected, job / "out")


@pytest.mark.slow
def test_vllm_results_imported_stage_by_stage_give_the_same_outputs(runner, chat, tmp_path):
    expected = summarize_seeds(runner, chat.base_url, tmp_path / "live")
    sent_live = len(chat.bodies())
    job = tmp_path / "job"
    assert prepare(runner, job, chat.base_url, tmp_path / "batch-cache").exit_code == 0
    requests = lines(job / "requests-map.jsonl")
    results = tmp_path / "peek.jsonl"
    write_results(job / "requests-map.jsonl", results, scripted_model, shape="vllm", seed=5)
    assert [r["custom_id"] for r in lines(results)] != [r["custom_id"] for r in requests]  # really out of order
    assert {r["custom_id"] for r in lines(results)} == {r["custom_id"] for r in requests}
    result, imported = import_until_done(runner, job, scripted_model)
    assert result.exit_code == 0, result.output
    assert imported[0] == "requests-map.jsonl" and imported[-1] == "requests-briefing.jsonl"
    assert "requests-reduce.jsonl" in imported  # the merges of multi-chunk articles, once their maps are in
    assert len(chat.bodies()) == sent_live  # the endpoint was never asked for a completion
    assert_same_outputs(expected, job / "out")


def test_replies_are_validated_like_live_ones_and_failures_go_to_a_follow_up(runner, chat, tmp_path):
    job = tmp_path / "job"
    assert prepare(runner, job, chat.base_url, tmp_path / "cache").exit_code == 0
    requests = lines(job / "requests-map.jsonl")
    answers = [answer_line(request, scripted_model, "vllm") for request in requests]
    bad = {answers[0]["custom_id"], answers[1]["custom_id"], answers[2]["custom_id"], answers[3]["custom_id"]}
    answers[0]["response"]["body"]["choices"][0]["message"]["content"] = "Sure! Here is the summary."
    answers[1]["response"]["body"]["choices"][0]["finish_reason"] = "length"
    reply = json.loads(answers[2]["response"]["body"]["choices"][0]["message"]["content"])
    del reply["key_points"]
    answers[2]["response"]["body"]["choices"][0]["message"]["content"] = json.dumps(reply)
    answers[3]["response"]["body"]["choices"] = []
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(a) + "\n" for a in reversed(answers)))
    result = brief(runner, "batch", "import", job, results)
    assert result.exit_code == 0, result.output
    assert f"{len(requests) - 4} accepted, 4 failed" in result.stdout
    failures = json.loads((job / "job.json").read_text())["failures"]
    assert set(failures) == bad
    reasons = sorted(failure["reason"] for failure in failures.values())
    assert all(reason.startswith("rejected: ") for reason in reasons)
    assert any("not valid JSON" in r for r in reasons) and any("finish_reason length" in r for r in reasons)
    assert any("key_points" in r for r in reasons) and any("no choices" in r for r in reasons)
    assert {r["custom_id"] for r in lines(job / "requests-map-retry1.jsonl")} == bad


@pytest.mark.slow
def test_live_fallback_sends_only_the_failed_line_to_the_endpoint(runner, chat, tmp_path):
    job = tmp_path / "job"
    assert prepare(runner, job, chat.base_url, tmp_path / "cache", two_seeds(tmp_path)).exit_code == 0
    responder = fail_first("000_35dc785b65d2bec5")
    result, imported = import_until_done(runner, job, responder, "--live-fallback")
    assert result.exit_code == 0, result.output
    assert not any("retry" in name and "map" in name for name in imported)
    live = chat.bodies()
    assert len(live) == 1 and is_map_of(live[0], "000_35dc785b65d2bec5")
    assert json.loads((job / "job.json").read_text())["stages"]["map"]["live"] == 1


@pytest.mark.slow
def test_a_request_that_always_fails_ends_as_one_recorded_error(runner, chat, tmp_path):
    job = tmp_path / "job"
    assert prepare(runner, job, chat.base_url, tmp_path / "cache", two_seeds(tmp_path)).exit_code == 0
    result, imported = import_until_done(runner, job, fail_first("002_e506a97cba6d166a", times=None))
    assert result.exit_code == 1, result.output
    assert sum(1 for name in imported if name.startswith("requests-map")) == 3  # max_attempts
    manifest = json.loads((job / "out" / "run.json").read_text())
    rows = {Path(row["source"]).name: row for row in manifest["inputs"]}
    failed = rows.pop("002_e506a97cba6d166a.txt")
    assert failed["status"] == "failed" and "could not answer 002_e506a97cba6d166a" in failed["error"]
    assert [row["status"] for row in rows.values()] == ["ok"]
    assert not (job / "out" / "002_e506a97cba6d166a.json").exists()
    assert (job / "out" / "000_35dc785b65d2bec5.json").exists()
    assert "Overview of 1 articles" in (job / "out" / "briefing.md").read_text()
    assert len(chat.bodies()) == 0


@pytest.mark.slow
def test_the_api_key_is_used_at_every_step_and_stored_nowhere(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    job = tmp_path / "job"
    with FakeOpenAI(require_key=SECRET) as keyed:  # lists models only for the right key
        assert prepare(runner, job, keyed.base_url, tmp_path / "cache", two_seeds(tmp_path)).exit_code == 0
        result, _ = import_until_done(runner, job, scripted_model)
        base_url = keyed.base_url
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert json.loads((job / "inputs.json").read_text())["base_url"] == base_url
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path


def test_the_job_runs_from_another_folder_on_the_recorded_inputs(runner, chat, tmp_path, monkeypatch):
    news = tmp_path / "news"
    news.mkdir()
    (news / "a.txt").write_bytes((SEEDS / "002_e506a97cba6d166a.txt").read_bytes())
    job = tmp_path / "job"
    args = ["batch", "prepare", "news", "--out", "job", "--base-url", chat.base_url, "--model", MODEL]
    assert brief(runner, *args, "--cache-dir", "cache").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result, _ = import_until_done(runner, job, scripted_model)
    assert result.exit_code == 0, result.output
    record = json.loads((job / "out" / "a.json").read_text())
    assert record["source"] == str(news / "a.txt") and record["mode"] == "model"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["batch", "prepare", "seeds", "--out", "job", "--base-url", "http://127.0.0.1:9/v1"], "--model"),
        (["batch", "prepare", "seeds", "--out", "job", "--model", "m"], "--base-url"),
        (["batch", "prepare", "-", "--out", "job", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"], "stdin"),
        (["batch", "status", "nowhere"], "no brief batch job here"),
        (["batch", "import", "nowhere", "results.jsonl"], "no brief batch job here"),
    ],
)
def test_usage_errors_exit_2_with_one_line(runner, args, message):
    result = brief(runner, *args)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_collect_before_the_batch_is_done_says_so_and_exits_1(runner, tmp_path):
    job = tmp_path / "job"
    with FakeBatchAPI(responder=scripted_model, polls_per_status=1000) as api:
        assert prepare(runner, job, api.base_url, tmp_path / "cache", two_seeds(tmp_path)).exit_code == 0
        assert brief(runner, "batch", "submit", job).exit_code == 0
        status = brief(runner, "batch", "status", job)
        collect = brief(runner, "batch", "collect", job)
        waited = brief(runner, "batch", "run", job, "--poll", "0", "--max-wait", "0")
    assert status.exit_code == 0 and "requests-map.jsonl: validating" in status.stdout
    assert collect.exit_code == 1 and "still running" in collect.output
    assert waited.exit_code == 1 and "run again" in waited.output
    assert len(api.created()) == 1  # resuming never created a second batch


def test_a_job_imported_from_vllm_run_batch_needs_no_endpoint(runner, tmp_path):
    job, nowhere = tmp_path / "job", "http://127.0.0.1:9/v1"  # nothing listens there
    prepared = prepare(runner, job, nowhere, tmp_path / "cache", two_seeds(tmp_path))
    assert prepared.exit_code == 0, prepared.output
    result, _ = import_until_done(runner, job, scripted_model)
    assert result.exit_code == 0 and (job / "out" / "briefing.md").exists()
