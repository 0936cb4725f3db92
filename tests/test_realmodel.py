"""brief end to end against a real small model (llama.cpp server): structure, not wording.

Run with `pytest -m realmodel`. Skipped unless a real server is at hand: $BRIEF_REALMODEL_URL
(+ $BRIEF_REALMODEL_NAME), or the llama venv and an assembled model that bench/real_model.py made under
$BRIEF_LLM_HOME (then a server for $BRIEF_REALMODEL_SIZE, 0.5b by default, is started here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.realmodel_support import ROOT, SKIP_REASON, RealEndpoint, english_share, excerpt, real_endpoint

pytestmark = [pytest.mark.realmodel, pytest.mark.slow]

SEED_A = "001_133b7f7bbe8ba7e2.txt"
SEED_B = "003_5cb4fd5a6fe695d5.txt"
# A 0.5B model on 2 shared cores reads ~10-40 prompt tokens/s and llama-cpp-python serves one request at
# a time: a run takes minutes. brief runs with its default settings (a local endpoint's own limits).
RUN_TIMEOUT = 2400


@pytest.fixture(scope="module")
def endpoint() -> Iterator[RealEndpoint]:
    with real_endpoint() as found:
        if found is None:
            pytest.skip(SKIP_REASON)
        yield found


def brief(endpoint: RealEndpoint, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline", "summarize", *args, "--base-url", endpoint.base_url]
    if endpoint.model:
        command += ["--model", endpoint.model]
    return subprocess.run(command, cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def write_articles(folder: Path, *seeds: str, max_chars: int = 500) -> dict[str, str]:
    """Short excerpts of seed articles as files; returns {file stem: text}."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {}
    for seed in seeds:
        text = excerpt(seed, max_chars)
        (folder / seed).write_text(text, encoding="utf-8")
        texts[Path(seed).stem] = text
    return texts


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def assert_english_result(result: dict[str, Any], article: str) -> None:
    """English, or what is not English is flagged for the reader (a small model may answer in Chinese twice)."""
    assert result["mode"] == "model"
    flagged = {check["field"] for check in result.get("checks", []) if check["kind"] == "untranslated"}
    fields = [("title", result["title"]), ("summary", result["summary"])]
    fields += [(f"key_points[{i}]", point) for i, point in enumerate(result["key_points"])]
    for name, text in fields:
        assert english_share(text) >= 0.8 or name in flagged, (name, text, result.get("checks"))
    assert len(result["summary"]) >= 10, result["summary"]
    assert result["key_points"], "no key points"
    for entry in result["glossary"]:
        assert entry["source"] in article, f"glossary term {entry['source']!r} is not in the article"


def test_one_article_gives_an_english_summary_and_a_glossary_from_the_article(
    endpoint: RealEndpoint, tmp_path: Path
) -> None:
    texts = write_articles(tmp_path / "in", SEED_A)
    out = tmp_path / "out"

    done = brief(endpoint, str(tmp_path / "in"), "--out", str(out), "--cache-dir", str(tmp_path / "cache"))

    assert done.returncode == 0, done.stderr[-3000:]
    manifest = load(out / "run.json")
    assert manifest["mode"] == "model"
    [row] = manifest["inputs"]
    assert row["status"] == "ok", row["error"]
    assert row["requests"] >= 1 and row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    [doc_id] = row["documents"]
    assert (out / f"{doc_id}.md").is_file() and (out / "briefing.md").is_file()
    assert_english_result(load(out / f"{doc_id}.json"), texts[Path(SEED_A).stem])


def test_two_articles_give_two_results_one_briefing_and_a_glossary_table(
    endpoint: RealEndpoint, tmp_path: Path
) -> None:
    texts = write_articles(tmp_path / "in", SEED_A, SEED_B)
    out = tmp_path / "out"

    done = brief(endpoint, str(tmp_path / "in"), "--out", str(out), "--cache-dir", str(tmp_path / "cache"))

    assert done.returncode == 0, done.stderr[-3000:]
    manifest = load(out / "run.json")
    assert [row["status"] for row in manifest["inputs"]] == ["ok", "ok"], [r["error"] for r in manifest["inputs"]]
    assert manifest["totals"]["ok"] == 2 and manifest["briefing_error"] is None
    for row in manifest["inputs"]:
        [doc_id] = row["documents"]
        assert_english_result(load(out / f"{doc_id}.json"), texts[Path(row["source"]).stem])
    briefing = (out / "briefing.md").read_text(encoding="utf-8")
    assert len(briefing) > 200
    both = "".join(texts.values())
    for line in (out / "glossary.tsv").read_text(encoding="utf-8").splitlines():
        source, english = line.split("\t")
        assert source in both and english.strip(), line


def test_a_rerun_of_the_same_folder_sends_no_request(endpoint: RealEndpoint, tmp_path: Path) -> None:
    write_articles(tmp_path / "in", SEED_B, max_chars=300)
    args = [str(tmp_path / "in"), "--cache-dir", str(tmp_path / "cache")]

    first = brief(endpoint, *args, "--out", str(tmp_path / "out1"))
    second = brief(endpoint, *args, "--out", str(tmp_path / "out2"))

    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:] + second.stderr[-2000:]
    assert load(tmp_path / "out1" / "run.json")["totals"]["requests"] >= 1
    assert load(tmp_path / "out2" / "run.json")["totals"]["requests"] == 0
    doc_id = Path(SEED_B).stem
    assert (
        load(tmp_path / "out2" / f"{doc_id}.json")["summary"] == load(tmp_path / "out1" / f"{doc_id}.json")["summary"]
    )


def test_an_article_on_stdin_gives_json_on_stdout(endpoint: RealEndpoint, tmp_path: Path) -> None:
    article = excerpt(SEED_A, 400)

    done = brief(endpoint, "-", "--format", "json", "--cache-dir", str(tmp_path / "cache"), stdin=article)

    assert done.returncode == 0, done.stderr[-3000:]
    assert_english_result(json.loads(done.stdout), article)


def test_every_check_points_at_english_text_and_brief_check_finds_the_same(
    endpoint: RealEndpoint, tmp_path: Path
) -> None:
    # Whatever the model gets wrong, what is flagged must be in the English shown to the reader, be
    # counted in run.json and marked in the Markdown, and an audit of the folder must find the same.
    write_articles(tmp_path / "in", SEED_B, max_chars=700)
    out = tmp_path / "out"

    done = brief(endpoint, str(tmp_path / "in"), "--out", str(out), "--cache-dir", str(tmp_path / "cache"))

    assert done.returncode == 0, done.stderr[-3000:]
    manifest = load(out / "run.json")
    [row] = manifest["inputs"]
    [doc_id] = row["documents"]
    result = load(out / f"{doc_id}.json")
    english = " ".join([result["title"], result["summary"], *result["key_points"]])
    checks = result.get("checks", [])  # absent when nothing was flagged
    for check in checks:
        assert check["kind"] in {"number", "untranslated", "name"}, check
        assert check["text"] in english, check
    kinds = [check["kind"] for check in checks]
    assert all(manifest["checks"][kind] == kinds.count(kind) for kind in ("number", "untranslated", "name"))
    assert manifest["checks"]["articles_unverified"] == (1 if kinds else 0)
    assert ("unverified" in (out / f"{doc_id}.md").read_text(encoding="utf-8")) == bool(kinds)
    audit = subprocess.run(
        [sys.executable, "-m", "pipeline", "check", str(out), "--json"], cwd=ROOT, capture_output=True, text=True
    )
    [audited] = [entry for entry in json.loads(audit.stdout) if entry["id"] == doc_id]
    assert [(c["kind"], c["text"]) for c in audited["checks"]] == [(c["kind"], c["text"]) for c in checks]
