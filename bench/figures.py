"""The figures of issue #13, each measured on whole `brief summarize` processes (see bench/run.py)."""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from pipeline_bench import (  # noqa: E402
    ROOT,
    SEEDS,
    BriefRun,
    Startup,
    cleaned_documents,
    fake_server,
    one_chunk_articles,
    real_size_articles,
    stall_env,
    summarize,
)

LANGCHAIN_VENV = Path.home() / ".cache" / "brief-bench" / "langchain"
LANGCHAIN_PACKAGES = ["langchain-classic", "langchain-text-splitters", "langchain-core", "tiktoken"]
PUBLISHED_LANGCHAIN = "issue #13: LangChain 3,829 vs brief 5,246 prompt tokens per file (100 real-size articles)"


@dataclass
class Row:
    """One line of the table (and of results.json)."""

    figure: str
    value: Any
    target: str
    ok: bool | None
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _median_runs(runs: list[float]) -> str:
    return "" if len(runs) < 2 else f" (median of {', '.join(f'{r:.3g}' for r in runs)})"


def request_kinds(log: Path) -> Counter[str]:
    """Requests the fake server answered, by prompt (map, reduce, briefing, repair, other)."""
    from tests.responders import prompt_kind

    kinds: Counter[str] = Counter()
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            kinds[prompt_kind(json.loads(line))] += 1
        except (ValueError, KeyError, StopIteration):
            kinds["other"] += 1
    return kinds


# -- 1. client CPU per article -------------------------------------------------------------------------


def cpu_one_chunk(work: Path, count: int, repeats: int, startup: Startup, piece_chars: int = 0) -> Row:
    inputs = one_chunk_articles(work / f"one-{count}", count)
    small = max(count // 4, 1)
    with fake_server(0.0, piece_chars=piece_chars) as server:
        runs = [summarize(inputs, work, server.url, 32) for _ in range(repeats)]
        marginal = ""
        if repeats > 1 and not piece_chars:  # a quarter-size run separates fixed costs from per-article ones
            quarter = summarize(one_chunk_articles(work / f"one-{small}", small), work, server.url, 32)
            slope = (statistics.median(r.cost.cpu for r in runs) - quarter.cost.cpu) / (count - small)
            fixed = quarter.cost.cpu - slope * small
            marginal = f"; marginal {slope * 1000:.2f} ms/article + fixed {fixed:.2f} s"
    per = [(r.cost.cpu - startup.cpu) / count * 1000 for r in runs]
    value = statistics.median(per)
    requests = runs[0].requests
    streaming = f", streamed {piece_chars} chars per event" if piece_chars else ""
    return Row(
        figure=f"client CPU per one-chunk article ({count}, cold{streaming})",
        value=round(value, 2),
        target="(report)" if piece_chars else "<= 2 ms",
        ok=None if piece_chars else value <= 2.0,
        detail=f"{statistics.median(r.cost.cpu for r in runs):.2f} s CPU - {startup.cpu:.2f} s start, "
        f"{requests} requests{marginal}{_median_runs(per)}; server CPU {server.cpu:.2f} s",
        data={"cpu_s": [r.cost.cpu for r in runs], "requests": requests, "startup_cpu_s": startup.cpu},
    )


def cpu_real_size(work: Path, copies: int, repeats: int, startup: Startup) -> Row:
    inputs = real_size_articles(work / f"real-{copies}", copies)
    files = len(list(inputs.iterdir()))
    with fake_server(0.0) as server:
        runs = [summarize(inputs, work, server.url, 32) for _ in range(repeats)]
    per_file = [(r.cost.cpu - startup.cpu) / files * 1000 for r in runs]
    documents = runs[0].totals.get("documents", files)
    value = statistics.median(per_file)
    return Row(
        figure=f"client CPU per real-size file (seeds' mix, {files} files, cold)",
        value=round(value, 1),
        target="<= 12 ms",
        ok=value <= 12.0,
        detail=f"{value * files / documents:.1f} ms per document ({documents} documents), "
        f"{runs[0].requests} requests{_median_runs(per_file)}; server CPU {server.cpu:.2f} s",
        data={"cpu_s": [r.cost.cpu for r in runs], "files": files, "documents": documents},
    )


# -- 2. efficiency ---------------------------------------------------------------------------------


def efficiency(work: Path, count: int, latency: float, concurrency: int, repeats: int, startup: Startup) -> Row:
    """ideal / measured wall time; ideal = latency x (map waves + the requests that go alone) + start."""
    inputs = one_chunk_articles(work / f"one-{count}", count)
    ratios, walls, ideals = [], [], []
    for n in range(repeats):
        log = work / f"eff-{concurrency}-{n}.jsonl"
        with fake_server(latency, log=log) as server:
            run = summarize(inputs, work, server.url, concurrency)
        kinds = request_kinds(log)
        alone = run.requests - kinds["map"]  # the JSON-mode probe first, the briefing last
        ideal = latency * (math.ceil(kinds["map"] / concurrency) + alone) + startup.wall
        ratios.append(ideal / run.cost.wall)
        walls.append(run.cost.wall)
        ideals.append(ideal)
    value = statistics.median(ratios)
    goal = 0.9 if concurrency <= 32 else 0.8
    at = ratios.index(value) if value in ratios else 0
    return Row(
        figure=f"efficiency, concurrency {concurrency} ({count} articles x {latency * 1000:.0f} ms)",
        value=round(value, 3),
        target=f">= {goal}",
        ok=value >= goal,
        detail=f"{walls[at]:.2f} s vs ideal {ideals[at]:.2f} s ({dict(kinds)}; CPU {run.cost.cpu:.1f} s, "
        f"server CPU {server.cpu:.2f} s){_median_runs(ratios)}",
        data={"ratios": ratios, "walls": walls, "ideals": ideals, "kinds": dict(kinds)},
    )


# -- 3. event-loop stalls --------------------------------------------------------------------------


def _culprit(stall: dict[str, Any]) -> str:
    """The deepest pipeline frame of the first sample (the code that ran), else where the task resumed."""
    for sample in stall.get("samples", []):
        inner = sample[0]
        ours = next((frame for frame in sample if frame.startswith("pipeline/")), None)
        if ours:
            return ours if inner == ours else f"{ours} -> {inner}"
        return inner
    return f"resumed at {stall['resumed_at']}, suspended at {stall['suspended_at']}"


def stalls(work: Path, runs: list[tuple[str, Path, float]]) -> tuple[Row, list[dict[str, Any]]]:
    """Run brief with the stall probe on each (name, inputs, latency); the largest stall and its culprits."""
    reports = []
    for name, inputs, latency in runs:
        log = work / f"stalls-{name}.json"
        with fake_server(latency) as server:
            summarize(inputs, work, server.url, 32, env=stall_env(log))
        reports.append((name, json.loads(log.read_text(encoding="utf-8"))))
    by_culprit: dict[str, list[float]] = defaultdict(list)
    for _, report in reports:
        for stall in report["slowest"]:
            by_culprit[re.sub(r":\d+ ", " ", _culprit(stall))].append(stall["ms"])
    culprits = [
        {"culprit": where, "max_ms": max(ms), "count": len(ms), "total_ms": round(sum(ms), 1)}
        for where, ms in sorted(by_culprit.items(), key=lambda kv: -max(kv[1]))
    ]
    worst = max(report["max_ms"] for _, report in reports)
    counts = ", ".join(
        f"{name}: {r['stalls']} over {r['threshold_ms']:g} ms, {r['stall_ms_total']:.0f} ms" for name, r in reports
    )
    return (
        Row(
            figure="largest event-loop stall (ms)",
            value=round(worst, 1),
            target="<= 5 ms",
            ok=worst <= 5.0,
            detail=counts,
            data={"runs": {name: {k: v for k, v in r.items() if k != "slowest"} for name, r in reports}},
        ),
        culprits,
    )


# -- 4. warm re-run, 7. memory ---------------------------------------------------------------------


def warm_and_memory(work: Path, small: int, large: int, repeats: int, startup: Startup) -> list[Row]:
    """Cold runs of `small` and `large` articles (peak RSS of each), then warm re-runs of the small one."""
    small_inputs = one_chunk_articles(work / f"one-{small}", small)
    large_inputs = one_chunk_articles(work / f"one-{large}", large)
    with fake_server(0.0) as server:
        cold_small = summarize(small_inputs, work, server.url, 32)
        # Re-runs as a user makes them: same folder, same cache, same output folder.
        warm = [
            summarize(small_inputs, work, server.url, 32, cache=cold_small.cache, out=cold_small.out)
            for _ in range(repeats)
        ]
        cold_large = summarize(large_inputs, work, server.url, 32)
    beyond = [r.cost.cpu - startup.cpu for r in warm]
    value = statistics.median(beyond)
    requests = max(r.requests for r in warm)
    growth_kb = (cold_large.cost.max_rss_mb - cold_small.cost.max_rss_mb) * 1024 / (large - small)
    result_kb = _mean_result_kb(cold_small)
    return [
        Row(
            figure=f"warm re-run of {small} articles: CPU beyond start (s)",
            value=round(value, 2),
            target="<= 0.5 s, 0 req",
            ok=value <= 0.5 and requests == 0,
            detail=f"{requests} requests, {warm[0].totals.get('cache_hits', 0)} cache hits, "
            f"wall {statistics.median(r.cost.wall for r in warm):.2f} s{_median_runs(beyond)}",
            data={"cpu_s": [r.cost.cpu for r in warm], "requests": requests},
        ),
        Row(
            figure=f"peak RSS, {small} vs {large} articles (MB)",
            value=f"{cold_small.cost.max_rss_mb:.0f} / {cold_large.cost.max_rss_mb:.0f}",
            target="flat + results",
            ok=growth_kb <= 3 * result_kb,
            detail=f"{growth_kb:.1f} KB per extra article; one <id>.json is {result_kb:.1f} KB "
            "(ok: growth <= 3x that, a result held as Python objects)",
            data={"rss_mb": [cold_small.cost.max_rss_mb, cold_large.cost.max_rss_mb], "growth_kb": growth_kb},
        ),
    ]


def _mean_result_kb(run: BriefRun) -> float:
    sizes = [p.stat().st_size for p in run.out.glob("*.json") if p.name not in ("run.json", "glossary.json")]
    return statistics.mean(sizes) / 1024 if sizes else 0.0


# -- the SDK's floor ----------------------------------------------------------------------------------


def sdk_floor(count: int, startup: Startup) -> list[Row]:
    """The same number of streamed requests with no pipeline: the openai SDK as brief uses it, then
    plain aiohttp; each process's CPU, import included (bench/sdk_floor.py)."""
    from pipeline_bench import brief_env, run_process

    script = str(ROOT / "bench" / "sdk_floor.py")
    rows = []
    for kind, label in (("sdk", "the openai SDK alone"), ("aiohttp", "plain aiohttp, same requests")):
        with fake_server(0.0) as server:
            cost = run_process([sys.executable, script, "--child", kind, server.url, str(count)], brief_env())
        if cost.returncode != 0:
            raise RuntimeError(f"sdk_floor {kind} failed: {cost.stderr[-300:]}")
        per = cost.cpu / count * 1000
        rows.append(
            Row(
                figure=f"floor: {label}, {count} streamed requests (ms per request, import included)",
                value=round(per, 2),
                target="(report)",
                ok=None,
                detail=f"{cost.cpu:.2f} s CPU for the process; brief's whole run is held to 2 ms per "
                f"article beyond its start ({startup.cpu:.2f} s)",
                data={"cpu_s": cost.cpu, "requests": count},
            )
        )
    return rows


# -- 5. start-up -----------------------------------------------------------------------------------


def help_row(startup: Startup) -> Row:
    return Row(
        figure=f"`brief --help` wall time (median of {len(startup.walls)})",
        value=round(startup.wall, 3),
        target="<= 0.3 s",
        ok=startup.wall <= 0.3,
        detail=f"min {min(startup.walls):.3f} s, CPU {startup.cpu:.3f} s (the start subtracted above)",
    )


# -- 6. prompt tokens ------------------------------------------------------------------------------


def prompt_tokens(work: Path, langchain: bool) -> list[Row]:
    from pipeline.ingest.tokens import count_tokens

    documents = cleaned_documents(SEEDS)
    source = sum(count_tokens(d["text"]) for d in documents)
    files = len({d["source"] for d in documents})
    log = work / "seed-requests.jsonl"
    with fake_server(0.0, log=log) as server:
        run = summarize(SEEDS, work, server.url, 8)
    bodies = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    by_kind: Counter[str] = Counter()
    from tests.responders import prompt_kind

    for body in bodies:
        try:
            kind = prompt_kind(body)
        except (ValueError, KeyError, StopIteration):
            kind = "other"
        by_kind[kind] += sum(count_tokens(m.get("content") or "") for m in body["messages"])
    sent = sum(by_kind.values())
    system = sum(count_tokens(m["content"]) for b in bodies for m in b["messages"] if m["role"] == "system")
    schema = sum(count_tokens(json.dumps(b.get("response_format") or "")) for b in bodies)
    ratio = sent / source
    rows = [
        Row(
            figure="prompt tokens per source token (seeds, all stages)",
            value=round(ratio, 2),
            target="<= 1.2",
            ok=ratio <= 1.2,
            detail=f"{sent} sent ({sent / files:.0f} per file; {dict(by_kind)}; system prompts {system}) "
            f"for {source} source tokens, {run.requests} requests; response_format schemas {schema} more",
            data={"sent": sent, "source": source, "by_kind": dict(by_kind), "system": system, "schema": schema},
        )
    ]
    rows.append(_langchain_row(work, documents, source, files, sent) if langchain else _published_row())
    return rows


def _published_row() -> Row:
    return Row("LangChain map-reduce, same articles", "not run", "brief <= LangChain", None, PUBLISHED_LANGCHAIN)


def langchain_python(create: bool) -> Path | None:
    """The Python of the bench's LangChain venv (kept out of the project's venv); made once when asked."""
    python = LANGCHAIN_VENV / "bin" / "python"
    if not python.exists() and create:
        print(f"(making {LANGCHAIN_VENV} for the LangChain row: pip install {' '.join(LANGCHAIN_PACKAGES)})")
        subprocess.run([sys.executable, "-m", "venv", str(LANGCHAIN_VENV)], check=False)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *LANGCHAIN_PACKAGES], check=False)
    ok = (
        python.exists() and subprocess.run([str(python), "-c", "import langchain_classic"], check=False).returncode == 0
    )
    return python if ok else None


def _langchain_row(work: Path, documents: list[dict[str, Any]], source: int, files: int, brief_sent: int) -> Row:
    from pipeline.ingest.tokens import count_tokens

    python = langchain_python(create=True)
    if python is None:
        return _published_row()
    docs_path, prompts_path = work / "lc-documents.json", work / "lc-prompts.json"
    docs_path.write_text(json.dumps(documents, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [str(python), str(ROOT / "bench" / "langchain_mapreduce.py"), str(docs_path), str(prompts_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"(LangChain run failed: {done.stderr.strip()[-300:]})")
        return _published_row()
    result = json.loads(prompts_path.read_text(encoding="utf-8"))
    sent = sum(count_tokens(text) for doc in result for prompt in doc["prompts"] for text in prompt)
    calls = sum(len(doc["prompts"]) for doc in result)
    return Row(
        figure="LangChain map-reduce summarize, same articles",
        value=round(sent / source, 2),
        target="brief <= LangChain",
        ok=brief_sent <= sent,
        detail=f"{sent} sent ({sent / files:.0f} per file, {calls} calls) vs brief {brief_sent} "
        f"({brief_sent / sent:.2f}x); LangChain writes no glossary and no briefing",
        data={"sent": sent, "calls": calls, "brief_sent": brief_sent},
    )
