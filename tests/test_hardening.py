"""Hostile inputs, endpoints and environments: no secret leaks, no data loss, no crash, no hang."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_settings
from pipeline.errors import ConfigError
from tests.fakeserver import FakeOpenAI, default_responder
from tests.responders import prompt_kind

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_35dc785b65d2bec5.txt"
SHORT = ROOT / "seeds" / "003_5cb4fd5a6fe695d5.txt"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "BRIEF_")):
            monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty.toml").touch()
    monkeypatch.setenv("BRIEF_CONFIG", str(tmp_path / "empty.toml"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def brief(runner: CliRunner, *args: str, **kwargs: Any) -> Any:
    return runner.invoke(app, list(args), **kwargs)


def summarize(runner: CliRunner, base_url: str, tmp_path: Path, *paths: str, extra: tuple[str, ...] = ()) -> Any:
    args = ["summarize", *paths, "--base-url", base_url, "--model", "m", "--out", str(tmp_path / "out")]
    return brief(runner, *args, "--cache-dir", str(tmp_path / "cache"), *extra)


def all_files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- secrets -----------------------------------------------------------------------------------


def test_url_credentials_never_shown_nor_stored(runner, tmp_path, caplog):
    password = "hunter2-very-secret"
    with FakeOpenAI(script=["401"] * 0) as fake:
        port = fake.port
        fake.faults, fake.fault_every = ["500"], 1  # every request fails: errors carry the endpoint
        url = f"http://alice:{password}@127.0.0.1:{port}/v1"
        result = summarize(runner, url, tmp_path, str(SHORT), extra=("--max-attempts", "1"))
        doctor = brief(runner, "-v", "doctor", "--base-url", url, "--model", "m")
    assert result.exit_code == 1
    assert password not in result.output and "alice" not in result.output
    assert password not in doctor.output and f"127.0.0.1:{port}" in doctor.output
    for path, data in all_files(tmp_path).items():
        assert password.encode() not in data, path
    assert password not in caplog.text


def test_an_error_body_echoing_the_key_is_scrubbed(runner, tmp_path, monkeypatch):
    key = "sk-echoed-back-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with FakeOpenAI(responder=lambda body: f"not json, and your key is {key}") as fake:
        result = summarize(runner, fake.base_url, tmp_path, str(SHORT), extra=("--max-attempts", "1"))
    assert result.exit_code == 1
    assert key not in result.output
    for path, data in all_files(tmp_path).items():
        assert key.encode() not in data, path


def test_a_discovered_server_gets_no_key_and_a_bare_key_means_openai():
    keyed = load_settings({}, {"OPENAI_API_KEY": "sk-abcdefghijklmnop"}, Path("/nonexistent.toml"))
    assert keyed.base_url == "https://api.openai.com/v1" and keyed.api_key_for_endpoint == "sk-abcdefghijklmnop"
    discovered = keyed.with_endpoint("http://127.0.0.1:8000/v1", "qwen", "discovered")
    assert discovered.api_key_for_endpoint is None
    configured = load_settings({"base_url": "http://127.0.0.1:8000/v1"}, {"OPENAI_API_KEY": "sk-abcdefghijklmnop"})
    assert configured.api_key_for_endpoint == "sk-abcdefghijklmnop"


# -- data safety -------------------------------------------------------------------------------


def test_out_over_an_input_folder_never_overwrites_an_input(runner, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "report.md").write_bytes(SHORT.read_bytes())
    (work / "notes.json").write_text('{"mine": true}')
    before = all_files(work)
    with FakeOpenAI() as fake:
        first = brief(runner, "summarize", str(work / "report.md"), "--base-url", fake.base_url, "--model", "m",
                      "--out", str(work), "--no-cache")  # fmt: skip
        again = brief(runner, "summarize", str(work), "--base-url", fake.base_url, "--model", "m",
                      "--out", str(work), "--no-cache")  # fmt: skip
    assert first.exit_code == 0, first.output
    for path, data in before.items():
        assert path.read_bytes() == data, f"{path} was overwritten"
    manifest = json.loads((work / "run.json").read_text())
    assert [row["source"] for row in manifest["inputs"]] == [str(work / "report.md")]  # outputs not re-read
    assert again.exit_code == 0
    assert "report~2.md" in {p.name for p in work.iterdir()}


def test_a_user_file_named_like_a_run_file_stops_the_run(runner, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "briefing.md").write_text("my own notes")
    result = brief(runner, "summarize", str(SHORT), "--offline", "--out", str(out))
    assert result.exit_code == 2 and "briefing.md" in result.output
    assert (out / "briefing.md").read_text() == "my own notes"


def test_ids_never_collide_with_run_files_or_story_ids(runner, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    two_stories = (ROOT / "seeds" / "004_fcb75e84432dc768.txt").read_bytes()
    (inputs / "story.txt").write_bytes(two_stories)
    (inputs / "story#1.txt").write_bytes(SHORT.read_bytes())
    for name in ("run.txt", "briefing.txt", "glossary.txt"):
        (inputs / name).write_bytes(SEED.read_bytes())
    result = brief(runner, "summarize", str(inputs), "--offline", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    ids = [doc for row in manifest["inputs"] for doc in row["documents"]]
    assert len(ids) == len(set(ids)) == 6
    assert not {"run", "briefing", "glossary"} & set(ids)
    assert {"story#1", "story#2", "story_1"} <= set(ids)
    assert manifest["inputs"]  # run.json is brief's own, not an article's


def test_unwritable_output_folder_is_one_line_before_any_request(runner, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with FakeOpenAI() as fake:
        result = summarize(runner, fake.base_url, tmp_path, str(SHORT), extra=("--out", str(blocker / "out")))
        sent = len(fake.bodies())
    assert result.exit_code == 2 and sent == 0
    assert len(result.output.strip().splitlines()) == 1


def test_unwritable_cache_is_one_line_before_any_request(runner, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with FakeOpenAI() as fake:
        result = summarize(runner, fake.base_url, tmp_path, str(SHORT), extra=("--cache-dir", str(blocker / "c")))
        sent = len(fake.bodies())
    assert result.exit_code == 2 and sent == 0
    assert "cache" in result.output and "Traceback" not in result.output


# -- never crash, never hang -------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["badjson", "badutf8", "nochoices", "weirdusage", "huge"])
def test_a_hostile_200_fails_at_most_its_input(runner, tmp_path, fault):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (inputs / name).write_bytes(SHORT.read_bytes().replace("。".encode(), f"。{name}".encode(), 1))
    with FakeOpenAI(script=[fault] * 3) as fake:
        result = summarize(runner, fake.base_url, tmp_path, str(inputs), extra=("--max-attempts", "2"))
    assert "Traceback" not in result.output
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    statuses = [row["status"] for row in manifest["inputs"]]
    assert "pending" not in statuses and statuses.count("ok") >= 2
    assert result.exit_code in (0, 1)
    for path in (tmp_path / "out").glob("*.json"):
        assert path.stat().st_size < 1_000_000  # no 10 MB "summary" written verbatim


def test_timeout_is_a_hard_deadline_against_a_drip_feeding_server(runner, tmp_path):
    with FakeOpenAI(script=["drip"] * 10) as fake:
        started = time.monotonic()
        result = summarize(runner, fake.base_url, tmp_path, str(SHORT), extra=("--timeout", "1", "--max-attempts", "2"))
        elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert elapsed < 15  # two attempts of at most ~1 s each plus backoff, not 50 bytes x 200 ms x retries


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"BRIEF_TIMEOUT": "nan"}, "timeout"),
        ({"BRIEF_TIMEOUT": "inf"}, "timeout"),
        ({"BRIEF_CONFIG": "/nonexistent/brief.toml"}, "BRIEF_CONFIG"),
    ],
)
def test_absurd_settings_are_usage_errors(runner, monkeypatch, env, needle):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = brief(runner, "summarize", str(SHORT), "--offline")
    assert result.exit_code == 2 and needle in result.output


def test_config_file_value_errors_name_the_file(tmp_path):
    bad = tmp_path / "brief.toml"
    bad.write_text("timeout = 'nan'\n")
    with pytest.raises(ConfigError, match="brief.toml"):
        load_settings({}, {}, bad)


def test_version(runner):
    result = brief(runner, "--version")
    assert result.exit_code == 0 and result.output.startswith("brief ")


def test_summary_line_counts_requests_even_when_all_failed(runner, tmp_path):
    with FakeOpenAI(script=["500"] * 20) as fake:
        result = summarize(runner, fake.base_url, tmp_path, str(SHORT), extra=("--max-attempts", "2"))
        sent = len(fake.bodies())
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    assert manifest["totals"]["requests"] == sent > 0
    assert f"{sent} requests" in result.output


# -- model replies are untrusted -----------------------------------------------------------------


def test_an_invalid_glossary_item_is_dropped_not_the_article(runner, tmp_path):
    def sloppy(body: dict) -> str:
        reply = json.loads(default_responder(body))
        if prompt_kind(body) == "map":
            reply["glossary"].append({"source": "200億", "target": "20 billion", "kind": "number"})
        return json.dumps(reply)

    with FakeOpenAI(responder=sloppy) as fake:
        result = summarize(runner, fake.base_url, tmp_path, str(SHORT))
    assert result.exit_code == 0, result.output
    (record_path,) = (tmp_path / "out").glob("003_*.json")
    record = json.loads(record_path.read_text())
    assert any(flag.startswith("glossary_invalid:") for flag in record["flags"])
    assert all(entry["kind"] != "number" for entry in record["glossary"])


HOSTILE_TITLE = (
    "Title\n# Injected heading <script>alert(1)</script> [x](javascript:alert(1)) \x1b]8;;http://evil\x07\x1b[31mred"
)


def test_model_text_is_inert_in_markdown_and_on_the_terminal(runner, tmp_path):
    def hostile(body: dict) -> str:
        reply = json.loads(default_responder(body))
        if "title" in reply:
            reply["title"] = HOSTILE_TITLE
            reply["key_points"] = [HOSTILE_TITLE, "Second.", "Third."]
        if "overview" in reply:
            reply["overview"] = "Overview.\n## Fake section\n<img src=x onerror=alert(1)>"
        return json.dumps(reply)

    with FakeOpenAI(responder=hostile) as fake:
        result = summarize(runner, fake.base_url, tmp_path, str(SHORT))
    assert result.exit_code == 0, result.output
    for path in (tmp_path / "out").glob("*.md"):
        text = path.read_text()
        assert "\x1b" not in text and "\x07" not in text
        assert not re.search(r"(?<!\\)<(script|img)", text)  # only as escaped, inert text
        assert not re.search(r"(?<!\\)\]\(javascript:", text)
        assert "\n# Injected" not in text and "\n## Fake section" not in text
    article = next((tmp_path / "out").glob("003_*.md")).read_text()
    assert article.splitlines()[0].startswith("# Title") and "Injected heading" in article.splitlines()[0]
    assert "\x1b" not in result.output


def test_a_chinese_overview_is_rejected_like_an_untranslated_article(runner, tmp_path):
    def chinese_overview(body: dict) -> str:
        reply = json.loads(default_responder(body))
        if "overview" in reply:
            reply["overview"] = "这是一份中文概述，没有翻译成英文。" * 3
        return json.dumps(reply)

    with FakeOpenAI(responder=chinese_overview) as fake:
        result = summarize(runner, fake.base_url, tmp_path, str(SHORT))
        corrective = [b for b in fake.bodies() if prompt_kind(b) == "briefing"]
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    assert len(corrective) == 2 and "English" in corrective[1]["messages"][-1]["content"]
    assert manifest["briefing_error"] and result.exit_code == 0


@pytest.mark.parametrize(
    ("reply", "rejected"),
    [
        ({"title": "Hong Kong extends relief", "summary": "Fine.", "key_points": ["a", "b", "c"]}, False),
        ({"title": "the measures " * 8, "summary": "Fine.", "key_points": ["a", "b", "c"]}, True),
        ({"title": "T", "summary": "Fine.", "key_points": ["Same point."] * 5}, True),
        ({"title": "T", "summary": "the new measures " * 10, "key_points": ["a", "b", "c"]}, True),
        ({"title": "香港延长纾困措施", "summary": "香港政府宣布新措施。", "key_points": ["一", "二", "三"]}, True),
    ],
)
def test_repetitive_or_untranslated_replies_are_rejected(reply: dict, rejected: bool) -> None:
    from pipeline.model.english import language_problem, repetition_problem

    assert ((language_problem(reply) or repetition_problem(reply)) is not None) is rejected

    assert (
        (language_problem(reply) or repetition_problem(reply)) is not None
        if rejected
        else (language_problem(reply) is None and repetition_problem(reply) is None)
    )
