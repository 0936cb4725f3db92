"""Faithfulness end to end: a wrong figure is repaired once or shown to the reader; `brief check` audits outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.fakeserver import FakeOpenAI, default_responder
from tests.responders import prompt_kind

# Source: "the earlier 3 rounds of measures used HK$20 billion" (200亿 = 20 billion), the real failure.
ARTICLE = """特区政府推出第四轮防疫抗疫基金措施

香港特区行政长官林郑月娥今日宣布，政府将推出第四轮防疫抗疫基金，涉及金额约60亿港元。早前3轮措施动用200亿港元，为受疫情影响的行业提供支援。

林郑月娥表示，新一轮措施将于2月底前推出，预计惠及约3万名从业员。她强调，政府会继续密切留意疫情发展。
"""
WRONG = "The earlier three rounds of measures used 200 billion Hong Kong dollars."
RIGHT = "The earlier three rounds of measures used HK$20 billion."


def model(fixed: bool):
    """A model that gets 億 wrong in its summary, and on repair either fixes it or says the same again."""

    def reply(body: dict[str, Any]) -> str:
        data = json.loads(default_responder(body))
        kind = prompt_kind(body)
        if kind == "map":
            data.update(title="Hong Kong launches a fourth round of relief", summary=WRONG)
            data["key_points"] = ["A fourth round is coming.", "It helps affected trades.", "It starts soon."]
        elif kind == "repair" and fixed:
            data["summary"] = RIGHT
        return json.dumps(data, ensure_ascii=False)

    return reply


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_API_KEY", "BRIEF_MODEL", "BRIEF_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty.toml").touch()
    monkeypatch.setenv("BRIEF_CONFIG", str(tmp_path / "empty.toml"))


def run(tmp_path: Path, fake: FakeOpenAI, *extra: str) -> Any:
    source = tmp_path / "hk.txt"
    source.write_text(ARTICLE, encoding="utf-8")
    args = ["summarize", str(source), "--base-url", fake.base_url, "--model", "m", "--out", str(tmp_path / "out")]
    return CliRunner().invoke(app, [*args, "--no-cache", *extra])


def test_a_wrong_figure_gets_one_repair_request_naming_the_problem(tmp_path):
    with FakeOpenAI(responder=model(fixed=True)) as fake:
        result = run(tmp_path, fake)
        repairs = [b for b in fake.bodies() if prompt_kind(b) == "repair"]
    assert result.exit_code == 0, result.output
    (repair,) = repairs
    problems = repair["messages"][-1]["content"]
    assert '"200 billion" does not match any figure in the source' in problems
    assert "200亿港元 = HK$20 billion" in problems
    record = json.loads((tmp_path / "out" / "hk.json").read_text())
    assert record["summary"] == RIGHT and "repaired" in record["flags"] and "checks" not in record
    assert any(p["id"] == "repair.v1" for p in record["prompts"])


def test_what_still_fails_is_shown_to_the_reader_and_strict_fails_it(tmp_path):
    with FakeOpenAI(responder=model(fixed=False)) as fake:
        result = run(tmp_path, fake)
        strict = run(tmp_path, fake, "--strict")
        repairs = [b for b in fake.bodies() if prompt_kind(b) == "repair"]
    assert result.exit_code == 0 and strict.exit_code == 1
    assert len(repairs) == 2  # once per run, never again within a run
    out = tmp_path / "out"
    record = json.loads((out / "hk.json").read_text())
    (flag,) = [c for c in record["checks"] if c["kind"] == "number"]
    assert flag["text"] == "200 billion" and flag["field"] == "summary"
    article = (out / "hk.md").read_text()
    assert "200 billion Hong Kong dollars. (⚠ unverified)" in article and "## Checks" in article
    assert "60亿港元 = HK$6 billion" in article  # the nearest source figures, rendered right
    assert "## Checks" in (out / "briefing.md").read_text()
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["checks"]["number"] >= 1 and manifest["checks"]["articles_unverified"] == 1


def test_brief_check_audits_a_folder_with_planted_errors(tmp_path):
    with FakeOpenAI(responder=model(fixed=True)) as fake:
        assert run(tmp_path, fake).exit_code == 0
    out = tmp_path / "out"
    clean = CliRunner().invoke(app, ["check", str(out)])
    assert clean.exit_code == 0, clean.output
    record = json.loads((out / "hk.json").read_text())
    record["summary"] = "The earlier rounds used HK$300 billion, said Lin郑月娥."
    (out / "hk.json").write_text(json.dumps(record, ensure_ascii=False))
    planted = CliRunner().invoke(app, ["check", str(out), "--json"])
    assert planted.exit_code == 1
    (row,) = json.loads(planted.stdout)
    kinds = {c["kind"]: c["text"] for c in row["checks"]}
    assert "HK$300 billion" in kinds["number"] or "300 billion" in kinds["number"]
    assert "郑月娥" in kinds["untranslated"]
    assert CliRunner().invoke(app, ["check", str(tmp_path)]).exit_code == 2  # not an output folder


def test_offline_runs_the_same_checks_on_what_it_writes(tmp_path):
    source = tmp_path / "hk.txt"
    source.write_text(ARTICLE, encoding="utf-8")
    result = CliRunner().invoke(app, ["summarize", str(source), "--offline", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    assert manifest["checks"]["articles_unverified"] == 0  # extracted sentences carry the source's own figures


def test_an_overview_figure_no_article_gave_is_flagged(tmp_path):
    def invented_overview(body: dict[str, Any]) -> str:
        data = json.loads(model(fixed=True)(body))
        if prompt_kind(body) == "briefing":
            data["overview"] = "Earlier rounds used HK$20 billion; HK$900 billion was also pledged."
        return json.dumps(data, ensure_ascii=False)

    with FakeOpenAI(responder=invented_overview) as fake:
        assert run(tmp_path, fake).exit_code == 0
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    assert manifest["checks"]["overview"] == 1
    briefing = (tmp_path / "out" / "briefing.md").read_text()
    assert (
        '"HK$900 billion" does not match any figure' in briefing
        and 'HK$20 billion"' not in briefing.split("## Checks")[1]
    )
