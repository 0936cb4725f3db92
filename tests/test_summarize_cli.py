"""End-to-end `brief summarize` over the seeds, with the real openai client against the fake server."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.ingest.chunk import chunk_document
from pipeline.ingest.documents import document_id, ingest
from pipeline.ingest.tokens import default_counter
from tests.brief_args import summarize_args
from tests.fakeserver import FakeOpenAI
from tests.responders import INVENTED_TERM, passage_tag, prompt_kind

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
CHUNK_TOKENS = 2400  # the longer seeds need two chunks and a merge; both stories of 004 fit in one
ARTICLE_KEYS = {
    "id",
    "source",
    "mode",
    "language",
    "script",
    "title",
    "summary",
    "key_points",
    "glossary",
    "flags",
    "model",
    "prompt",
    "usage",
}


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the developer's environment or config file leaks into a test run."""
    for name in (
        "OPENAI_BASE_URL",
        "OPENAI_API_BASE",
        "OPENAI_API_KEY",
        "BRIEF_MODEL",
        "BRIEF_OFFLINE",
        "BRIEF_CACHE_DIR",
        "BRIEF_OUT",
        "BRIEF_CONCURRENCY",
        "BRIEF_JSON_MODE",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty-config.toml").touch()  # an empty config of our own: the user's is never read
    monkeypatch.setenv("BRIEF_CONFIG", str(tmp_path / "empty-config.toml"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture()
def server():
    with FakeOpenAI() as fake:
        yield fake


def summarize(runner: CliRunner, server: FakeOpenAI, tmp_path: Path, *paths: str, extra: tuple[str, ...] = ()):
    return runner.invoke(app, [*summarize_args(server.base_url, tmp_path, *paths, chunk_tokens=CHUNK_TOKENS), *extra])


def expected_chunks() -> dict[str, int]:
    """Chunks per document, computed from the ingest and chunk stages directly."""
    count = default_counter()
    chunks: dict[str, int] = {}
    for path in sorted(SEEDS.glob("*.txt")):
        for doc in ingest(path.read_bytes(), str(path), document_id(path.name)):
            chunks[doc.id] = len(chunk_document(doc, CHUNK_TOKENS, count))
    return chunks


def user_text(body: dict) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def _chunk_texts(folder: Path) -> dict[str, list[str]]:
    count = default_counter()
    texts: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.txt")):
        for doc in ingest(path.read_bytes(), str(path), document_id(path.name)):
            texts[doc.id] = [c.text for c in chunk_document(doc, CHUNK_TOKENS, count)]
    return texts


def requests_by_document(server: FakeOpenAI, folder: Path = SEEDS) -> dict[str, Counter[str]]:
    """What the server received, per document id and prompt kind (map / reduce).

    Requests carry no document id (nothing from outside the article goes into a prompt), so a
    map request is traced by its article text and a merge by the passages its parts summarise.
    """
    texts = _chunk_texts(folder)
    seen: dict[str, Counter[str]] = {}
    for body in server.bodies():
        kind = prompt_kind(body)
        if kind not in ("map", "reduce"):
            continue
        user = user_text(body)
        if kind == "map":
            part = user.split("<article>\n", 1)[1].rsplit("\n</article>", 1)[0]
            owners = [doc for doc, chunks in texts.items() if any(part in chunk for chunk in chunks)]
            owners = owners or [doc for doc in texts if part in "".join(texts[doc])]
        else:
            tags = set(re.findall(r"passage ([a-p]{8})", user))
            owners = [doc for doc, chunks in texts.items() if tags and tags <= {passage_tag(c) for c in chunks}]
        assert len(owners) == 1, f"every map/reduce request belongs to one document: {owners}"
        seen.setdefault(owners[0], Counter())[kind] += 1
    return seen


def test_seeds_give_every_output_file_with_the_article_schema(runner, server, tmp_path):
    result = summarize(runner, server, tmp_path, str(SEEDS))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    manifest = json.loads((out / "run.json").read_text())
    ids = [d for row in manifest["inputs"] for d in row["documents"]]
    assert len(manifest["inputs"]) == 5 and all(row["status"] == "ok" for row in manifest["inputs"])
    assert "004_fcb75e84432dc768#1" in ids and "004_fcb75e84432dc768#2" in ids and len(ids) == 6
    for doc_id in ids:
        record = json.loads((out / f"{doc_id}.json").read_text())
        assert ARTICLE_KEYS <= set(record)
        assert record["mode"] == "model" and record["model"] == "fake-qwen"
        assert 3 <= len(record["key_points"]) <= 7
        assert record["prompt"]["id"].startswith("map.") and len(record["prompt"]["hash"]) >= 12
        assert (out / f"{doc_id}.md").read_text().startswith(f"# {record['title']}")
    briefing = (out / "briefing.md").read_text()
    assert "Overview of 6 articles" in briefing
    assert all(doc_id in briefing for doc_id in ids)
    assert manifest["totals"]["requests"] == len(server.bodies())


def test_one_request_per_chunk_plus_one_merge_when_several(runner, server, tmp_path):
    assert summarize(runner, server, tmp_path, str(SEEDS)).exit_code == 0
    chunks = expected_chunks()
    assert any(n > 1 for n in chunks.values()) and any(n == 1 for n in chunks.values())
    received = requests_by_document(server)
    for doc_id, n in chunks.items():
        assert received[doc_id]["map"] == n, doc_id
        assert received[doc_id]["reduce"] == (1 if n > 1 else 0), doc_id
    assert sum(1 for b in server.bodies() if prompt_kind(b) == "briefing") == 1
    records = {d: json.loads((tmp_path / "out" / f"{d}.json").read_text()) for d in chunks}
    assert all(records[d]["usage"]["requests"] == n + (n > 1) for d, n in chunks.items())


def test_glossary_keeps_only_terms_in_the_source_and_merges_scripts(runner, server, tmp_path):
    assert summarize(runner, server, tmp_path, str(SEEDS)).exit_code == 0
    out = tmp_path / "out"
    tsv = (out / "glossary.tsv").read_text(encoding="utf-8").splitlines()
    assert tsv and all(len(line.split("\t")) == 2 for line in tsv)
    sources = [line.split("\t")[0] for line in tsv]
    assert INVENTED_TERM["source"] not in sources
    assert len(sources) == len(set(sources))
    # The model named 通義千問 in Simplified; the article writes it in Traditional: one entry, as written.
    assert "通義千問" in sources and "通义千问" not in sources
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["totals"]["dropped_terms"] >= 6  # the invented term, once per document
    for path in out.glob("0*.json"):
        record = json.loads(path.read_text())
        text = "".join(d.text for d in ingest((SEEDS / (record["source"].split("/")[-1])).read_bytes(), "x", "x"))
        for entry in record["glossary"]:
            assert entry["source"] in text, (path.name, entry["source"])


def test_rerun_of_unchanged_folder_sends_nothing(runner, server, tmp_path):
    assert summarize(runner, server, tmp_path, str(SEEDS)).exit_code == 0
    first = len(server.bodies())
    calls = sum(1 for b in server.bodies() if prompt_kind(b) != "other")  # not the schema probe
    assert summarize(runner, server, tmp_path, str(SEEDS)).exit_code == 0
    assert len(server.bodies()) == first  # the probe's answer is remembered too
    totals = json.loads((tmp_path / "out" / "run.json").read_text())["totals"]
    assert totals["requests"] == 0 and totals["cache_hits"] == calls


def test_rerun_rewrites_nothing_and_an_edited_input_alone_is_redone(runner, server, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in sorted(SEEDS.glob("00[0-2]_*.txt")):
        (folder / path.name).write_bytes(path.read_bytes())
    assert summarize(runner, server, tmp_path, str(folder)).exit_code == 0
    articles = sorted((tmp_path / "out").glob("00*.*"))
    stamps = {p: p.stat().st_mtime_ns for p in articles}
    assert summarize(runner, server, tmp_path, str(folder)).exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in articles} == stamps  # identical outputs are left alone
    server.reset()
    edited = next(folder.glob("001_*.txt"))
    edited.write_text(edited.read_text(encoding="utf-8") + "\n編者按：本文已更新。\n", encoding="utf-8")
    assert summarize(runner, server, tmp_path, str(folder)).exit_code == 0
    redone = {doc for doc, kinds in requests_by_document(server, folder).items() if kinds["map"]}
    assert redone == {edited.stem}


def test_stdin_prints_only_the_article(runner, server, tmp_path):
    seed = (SEEDS / "000_35dc785b65d2bec5.txt").read_bytes()
    args = ["summarize", "-", "--base-url", server.base_url, "--model", "m", "--no-cache"]
    result = runner.invoke(app, args, input=seed)
    assert result.exit_code == 0
    assert result.stdout.startswith("# Report ")
    assert "Nonexistent Corp" not in result.stdout
    assert not (tmp_path / "out").exists()
    as_json = runner.invoke(app, [*args, "--format", "json"], input=seed)
    record = json.loads(as_json.stdout)
    assert record["id"] == "stdin" and record["source"] == "-"


def test_bad_inputs_fail_alone_with_one_line_each(runner, server, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_good.txt").write_bytes((SEEDS / "001_133b7f7bbe8ba7e2.txt").read_bytes())
    (folder / "b_empty.txt").write_bytes(b"")
    (folder / "c_binary.txt").write_bytes(bytes(range(256)) * 4)
    (folder / "d_good.txt").write_bytes((SEEDS / "003_5cb4fd5a6fe695d5.txt").read_bytes())
    result = summarize(runner, server, tmp_path, str(folder))
    assert result.exit_code == 1
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    rows = {Path(r["source"]).name: r for r in manifest["inputs"]}
    assert rows["a_good.txt"]["status"] == rows["d_good.txt"]["status"] == "ok"
    for bad in ("b_empty.txt", "c_binary.txt"):
        assert rows[bad]["status"] == "failed" and bad in rows[bad]["error"]
        assert "\n" not in rows[bad]["error"]
        assert any(bad in line for line in result.output.splitlines())
    assert (tmp_path / "out" / "a_good.json").exists() and (tmp_path / "out" / "d_good.json").exists()


def test_offline_mode_is_labelled_and_keeps_the_schema(runner, tmp_path):
    result = runner.invoke(app, ["summarize", str(SEEDS), "--out", str(tmp_path / "out"), "--offline"])
    assert result.exit_code == 0, result.output
    assert "OFFLINE" in result.output
    records = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("0*.json")]
    assert len(records) == 6
    assert all(ARTICLE_KEYS <= set(r) and r["mode"] == "offline" for r in records)
    assert "OFFLINE" in (tmp_path / "out" / "briefing.md").read_text()


@pytest.mark.parametrize(
    "extra",
    [("--cache-dir", "x", "--no-cache"), ("--concurrency", "0"), ("--base-url", "ftp://example"), ("--nope",)],
)
def test_usage_errors_exit_2(runner, tmp_path, extra):
    result = runner.invoke(app, ["summarize", str(SEEDS), "--out", str(tmp_path / "o"), *extra])
    assert result.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_rejected_key_fails_with_what_to_fix_and_no_retry(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-000")
    with FakeOpenAI(require_key="sk-right-key-111") as fake:
        result = summarize(runner, fake, tmp_path, str(SEEDS / "000_35dc785b65d2bec5.txt"))
        assert result.exit_code == 2  # a wrong key is a configuration error: the run stops at once
        assert "OPENAI_API_KEY" in result.output
        assert len(fake.bodies()) <= 1  # the model list already said 401: at most one chat request


def test_api_key_reaches_no_file_and_no_output(runner, tmp_path, monkeypatch):
    secret = "sk-test-VERY-DISTINCT-4242"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with FakeOpenAI(require_key=secret) as fake:
        result = summarize(runner, fake, tmp_path, str(SEEDS))
        doctor = runner.invoke(app, ["doctor", "--base-url", fake.base_url])
    assert result.exit_code == 0 and doctor.exit_code == 0
    assert secret not in result.output and secret not in doctor.output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_doctor_shows_config_models_and_one_request(runner, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abcdefghijklmnop")
    result = runner.invoke(app, ["doctor", "--base-url", server.base_url])
    assert result.exit_code == 0, result.output
    assert "sk-…op" in result.output and "abcdefghijklmn" not in result.output
    assert "request:     ok" in result.output
    assert "json_schema: enforced by the server" in result.output
    assert len(server.bodies()) == 2  # the schema probe and the ping


def test_cache_stats_and_clear(runner, server, tmp_path):
    assert summarize(runner, server, tmp_path, str(SEEDS / "003_5cb4fd5a6fe695d5.txt")).exit_code == 0
    stats = runner.invoke(app, ["cache", "stats", "--cache-dir", str(tmp_path / "cache")])
    entries = int(re.search(r"entries:\s+(\d+)", stats.output).group(1))
    assert entries == len(server.bodies()) + 2  # one per model call, the article's results, the briefing's item choice
    cleared = runner.invoke(app, ["cache", "clear", "--cache-dir", str(tmp_path / "cache")])
    assert f"removed {entries} entries" in cleared.output
    again = runner.invoke(app, ["cache", "stats", "--cache-dir", str(tmp_path / "cache")])
    assert re.search(r"entries:\s+0\b", again.output)


def test_doctor_against_a_dead_endpoint_still_shows_the_configuration(runner):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = runner.invoke(app, ["doctor", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m"])
    assert result.exit_code == 1
    assert f"base_url:    http://127.0.0.1:{port}/v1 [flag]" in result.stdout
    assert "request:     FAILED: cannot reach" in result.stdout


def test_endpoint_that_keeps_failing_fails_the_input_after_max_attempts(runner, tmp_path):
    with FakeOpenAI(script=["500"] * 50) as fake:
        result = summarize(
            runner, fake, tmp_path, str(SEEDS / "003_5cb4fd5a6fe695d5.txt"), extra=("--max-attempts", "2")
        )
        sent = len(fake.bodies())
    assert result.exit_code == 1
    (row,) = json.loads((tmp_path / "out" / "run.json").read_text())["inputs"]
    assert row["status"] == "failed" and "gave up after 2 attempts" in row["error"]
    # The article's three chunks go out together; each is tried at most twice, and once the
    # article has failed nothing more is sent for it.
    assert 2 <= sent <= 6
