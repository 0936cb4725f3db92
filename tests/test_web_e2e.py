"""`brief summarize` on URLs, feeds and saved pages, end to end against loopback servers (no internet)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.fakeserver import FakeOpenAI
from tests.test_web_source import PAGES, fixture
from tests.webserver import Reply, WebServer


@pytest.fixture
def site() -> Iterator[WebServer]:
    with WebServer() as server:
        server.page("/news/portal.html", PAGES.joinpath("portal_gbk.html").read_bytes())  # no charset anywhere
        server.page("/news/hk.html", PAGES.joinpath("hk_big5.html").read_bytes())
        server.page("/news/tw.html", PAGES.joinpath("tw_table_utf8.html").read_bytes(), charset="utf-8")
        server.page("/rss.xml", fixture("rss.xml", server), content_type="application/rss+xml")
        server.add("/news/old.html", Reply(404, b"gone"))
        yield server


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_API_KEY", "BRIEF_MODEL", "BRIEF_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty.toml").touch()
    monkeypatch.setenv("BRIEF_CONFIG", str(tmp_path / "empty.toml"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(runner: CliRunner, tmp_path: Path, *args: str) -> tuple[int, str, dict]:
    result = runner.invoke(
        app, ["summarize", *args, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")]
    )
    manifest = (
        json.loads((tmp_path / "out" / "run.json").read_text()) if (tmp_path / "out" / "run.json").exists() else {}
    )
    return result.exit_code, result.output, manifest


def test_feed_page_and_file_mixed_with_metadata_and_links(runner, site, tmp_path):
    local = tmp_path / "local.txt"
    local.write_text((Path(__file__).resolve().parent.parent / "seeds" / "000_35dc785b65d2bec5.txt").read_text())
    with FakeOpenAI() as model:
        code, output, manifest = run(
            runner,
            tmp_path,
            site.url("/rss.xml"),
            site.url("/news/tw.html"),
            str(local),
            "--base-url",
            model.base_url,
            "--model",
            "m",
        )
    rows = {row["source"]: row for row in manifest["inputs"]}
    assert rows[str(local)]["status"] == "ok"
    assert rows[site.url("/news/tw.html")]["status"] == "ok"
    # The feed's two links to portal.html (one with utm_ parameters) are one story, fetched once.
    assert len(site.hits("/news/portal.html")) == 1
    # A dead link in the feed is that item's one error; the rest completes (exit 1).
    assert rows[site.url("/news/old.html")]["status"] == "failed" and "404" in rows[site.url("/news/old.html")]["error"]
    assert code == 1
    portal = next(row for source, row in rows.items() if "portal.html" in source)
    (doc_id,) = portal["documents"]
    record = json.loads((tmp_path / "out" / f"{doc_id}.json").read_text())
    assert "/news/portal.html" in record["meta"]["url"]  # where it was fetched from
    assert record["meta"]["canonical_url"] == "https://finance.huaxia.example/c/2024-05-15/doc-inaxyz1234.shtml"
    assert record["meta"]["published"].startswith("2024-05-15")
    assert "encoding:gb18030" in record["flags"] and "html" in record["flags"]
    assert "国家统计局" in Path(tmp_path / "out" / f"{doc_id}.md").read_text() or record["glossary"] is not None
    briefing = (tmp_path / "out" / "briefing.md").read_text()
    assert f"({record['meta']['canonical_url']})" in briefing  # each web story links to its page
    full_text = next(row for source, row in rows.items() if "full-text" in source)
    assert full_text["status"] == "ok"  # the feed carried the whole article: used without a fetch
    assert not site.hits("/news/full-text.html")


def test_new_summarises_only_what_an_earlier_run_did_not(runner, site, tmp_path):
    first, _, manifest = run(
        runner, tmp_path, site.url("/news/tw.html"), site.url("/news/hk.html"), "--offline", "--new"
    )
    assert first == 0 and manifest["totals"]["documents"] == 2
    site.page("/news/extra.html", PAGES.joinpath("portal_gbk.html").read_bytes())
    code, _, manifest = run(
        runner,
        tmp_path,
        site.url("/news/tw.html"),
        site.url("/news/hk.html"),
        site.url("/news/extra.html"),
        "--offline",
        "--new",
    )
    assert code == 0
    assert manifest["totals"]["documents"] == 1  # only the page no earlier run summarised
    briefing = (tmp_path / "out" / "briefing.md").read_text()
    assert "1 article(s)." in briefing


def test_the_same_text_on_two_urls_is_summarised_once(runner, site, tmp_path):
    body = PAGES.joinpath("hk_big5.html").read_bytes()
    site.page("/mirror/hk-copy.html", body)
    code, _, manifest = run(runner, tmp_path, site.url("/news/hk.html"), site.url("/mirror/hk-copy.html"), "--offline")
    statuses = sorted(row["status"] for row in manifest["inputs"])
    assert code == 0 and statuses == ["duplicate", "ok"]
    assert manifest["totals"]["documents"] == 1
    briefing = (tmp_path / "out" / "briefing.md").read_text()
    assert "## Same story elsewhere" in briefing and "hk-copy.html" in briefing


def test_urls_from_stdin_and_bad_lines(runner, site, tmp_path):
    listing = f"# today\n{site.url('/news/tw.html')}\nnot a url\n"
    result = runner.invoke(
        app,
        ["summarize", "--urls-from", "-", "--offline", "--out", str(tmp_path / "out"), "--no-cache"],
        input=listing,
    )
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    statuses = [row["status"] for row in manifest["inputs"]]
    assert statuses.count("ok") == 1 and statuses.count("failed") == 1
    assert result.exit_code == 1


def test_saved_html_file_goes_through_the_extractor(runner, tmp_path):
    saved = tmp_path / "saved.html"
    saved.write_bytes(PAGES.joinpath("portal_gbk.html").read_bytes())
    code, _, manifest = run(runner, tmp_path, str(saved), "--offline")
    assert code == 0
    (doc_id,) = manifest["inputs"][0]["documents"]
    record = json.loads((tmp_path / "out" / f"{doc_id}.json").read_text())
    assert any(flag.startswith("extractor:") for flag in record["flags"])
    assert record["meta"]["title"]


def test_a_rerun_with_the_site_gone_reuses_the_pages_fetched_before(runner, tmp_path):
    with WebServer() as gone:
        gone.page("/news/tw.html", PAGES.joinpath("tw_table_utf8.html").read_bytes(), charset="utf-8")
        url = gone.url("/news/tw.html")
        first, _, _ = run(runner, tmp_path, url, "--offline")
    assert first == 0
    code, _, manifest = run(runner, tmp_path, url, "--offline")  # the server is stopped: nothing answers
    assert code == 0 and manifest["inputs"][0]["status"] == "ok"
