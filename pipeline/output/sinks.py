"""Sinks: where a run's results go. A folder of files, one article on stdout, and run.json."""

from __future__ import annotations

import json
from typing import TextIO

from pipeline.output.folder import OutputFolder
from pipeline.output.render import (
    briefing_markdown,
    glossary_json,
    glossary_tsv,
    mark_sentences,
    render_article,
)
from pipeline.records import ArticleResult, CheckFlag
from pipeline.runner import RunOutcome
from pipeline.secrets import scrub


class FolderSink:
    """<id>.md and <id>.json per article; glossary.tsv, glossary.json and briefing.md for the run."""

    def __init__(self, folder: OutputFolder) -> None:
        self.folder = folder

    def article(self, result: ArticleResult) -> None:
        json_text, markdown = render_article(result)
        self.folder.write_all([(f"{result.id}.json", json_text), (f"{result.id}.md", markdown)])

    def finish(self, outcome: RunOutcome) -> None:
        report = outcome.report
        if report.interrupted:
            return  # a partial run gets its articles and run.json, not a briefing of half the news
        self.folder.write("glossary.tsv", glossary_tsv(outcome.terms))
        self.folder.write("glossary.json", glossary_json(outcome.terms, outcome.conflicts, report.mode))
        overview_checks: tuple[CheckFlag, ...] = ()
        if outcome.briefing is not None:
            overview, groups = outcome.briefing.overview, outcome.briefing.groups
            overview_checks = outcome.briefing.checks
            if overview_checks:
                overview = mark_sentences(overview, overview_checks)
        else:
            overview, groups = "No article could be processed.", []
        failures = [(i.source, i.error or i.status) for i in report.failed]
        duplicates = [(i.source, i.error or "") for i in report.inputs if i.status == "duplicate"]
        pieces = briefing_markdown(
            overview, groups, outcome.results, outcome.terms, report.mode, failures, overview_checks, duplicates
        )
        self.folder.write_pieces("briefing.md", map(scrub, pieces))


class ManifestSink:
    """run.json: per input status, error, documents, requests, tokens; run totals. Secrets scrubbed."""

    def __init__(self, folder: OutputFolder) -> None:
        self.folder = folder

    def article(self, result: ArticleResult) -> None:
        pass

    def finish(self, outcome: RunOutcome) -> None:
        self.folder.write_pieces("run.json", map(scrub, outcome.report.manifest_pieces()))


class StdoutSink:
    """Every document of a stdin article on stdout: Markdown, or the JSON record(s); nothing else."""

    def __init__(self, stream: TextIO, fmt: str) -> None:
        self.stream = stream
        self.fmt = fmt
        self.results: list[ArticleResult] = []

    def article(self, result: ArticleResult) -> None:
        self.results.append(result)

    def finish(self, outcome: RunOutcome) -> None:
        if not self.results:
            return
        if self.fmt == "json":
            records = [r.to_json() for r in self.results]
            text = json.dumps(records[0] if len(records) == 1 else records, ensure_ascii=False, indent=2) + "\n"
        else:
            text = "\n---\n\n".join(render_article(r)[1] for r in self.results)
        self.stream.write(text)
        self.stream.flush()
