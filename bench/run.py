"""Benchmarks: is brief ever the bottleneck? Prints a table and writes bench/results.json.

Run from the repository root:  .venv/bin/python bench/run.py  [--quick]

Every figure runs against the fake OpenAI-compatible server (tests/fakeserver.py) in its own
process, so the server's CPU is not charged to the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import Settings  # noqa: E402
from pipeline.model.client import JsonRequest, ModelClient  # noqa: E402

RESULTS = ROOT / "bench" / "results.json"
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "summary": {"type": "string"}},
    "required": ["title", "summary"],
}


@contextmanager
def fake_server(*flags: str) -> Iterator[str]:
    """Start tests/fakeserver.py in its own process; yield its base URL."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fakeserver.py"), "--port", "0", *flags],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("READY "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def echo_request(index: int) -> JsonRequest:
    """A small, distinct chunk request; the fake server's scripted model answers <article> requests."""
    return JsonRequest(
        prompt_id="bench.v1",
        prompt_hash="bench",
        messages=[
            {"role": "system", "content": "Summarise the article as JSON with title and summary."},
            {"role": "user", "content": f"<article>\n第{index}篇：一段新聞文字。\n</article>"},
        ],
        schema_name="bench",
        schema=SCHEMA,
        max_tokens=256,
        temperature=0.0,
    )


async def _send(base_url: str, requests: int, concurrency: int) -> float:
    """Send `requests` distinct requests through one client; return the batch's wall time.

    The client is built first (as a run builds it once); the timed batch includes opening its
    connections.
    """
    settings = Settings(base_url=base_url, model="bench", concurrency=concurrency, max_attempts=3)
    client = ModelClient.for_settings(settings, None)
    client.backend.sdk()  # type: ignore[attr-defined]  # built once per run; the batch still opens connections
    try:
        started = time.perf_counter()
        await asyncio.gather(*(client.complete_json(echo_request(i)) for i in range(requests)))
        return time.perf_counter() - started
    finally:
        await client.aclose()


def concurrency_efficiency(requests: int, latency: float, levels: list[int]) -> list[dict[str, Any]]:
    rows = []
    with fake_server("--latency", str(latency)) as url:
        asyncio.run(_send(url, 16, 8))  # imports, first connection: paid once by any real run too
        for level in levels:
            # Median of three for the short runs: on two shared cores one run varies by ±5 %.
            runs = sorted(asyncio.run(_send(url, requests, level)) for _ in range(1 if level == 1 else 3))
            measured = statistics.median(runs)
            ideal = math.ceil(requests / level) * latency
            rows.append(
                {
                    "figure": f"concurrency {level}: ideal/measured ({requests} req × {latency * 1000:.0f} ms)",
                    "value": round(ideal / measured, 3),
                    "target": ">= 0.9" if level > 1 else "(reference)",
                    "ok": ideal / measured >= 0.9 if level > 1 else None,
                    "detail": f"{measured:.2f} s vs ideal {ideal:.2f} s"
                    + (f" (median of {', '.join(f'{r:.2f}' for r in runs)})" if len(runs) > 1 else ""),
                }
            )
    return rows


def client_overhead(requests: int) -> dict[str, Any]:
    with fake_server("--latency", "0") as url:
        asyncio.run(_send(url, 20, 8))  # warm imports and connections
        cpu_started = time.process_time()
        asyncio.run(_send(url, requests, 8))
        per_request_ms = (time.process_time() - cpu_started) / requests * 1000
    return {
        "figure": f"client CPU per request, zero latency ({requests} req)",
        "value": round(per_request_ms, 3),
        "target": "<= 2 ms",
        "ok": per_request_ms <= 2.0,
        "detail": "process CPU time of the client, server in another process",
    }


def synthetic_articles(folder: Path, count: int) -> None:
    """Short distinct Chinese articles, like a day's wire copy."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        body = (
            f"第{i}號新聞：阿里巴巴今日發布通義千問新版本，英偉達股價上漲{i % 9}%。"
            f"分析人士認為，人工智能競賽仍在加速。報道指出，該模型在第{i}項測試中表現良好。"
        )
        (folder / f"article_{i:05d}.txt").write_text(body * 3, encoding="utf-8")


def run_cli(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "brief"), *args], capture_output=True, text=True, env=env)
    return time.perf_counter() - started, done


def warm_rerun(count: int, work: Path) -> dict[str, Any]:
    articles, cache, out = work / "articles", work / "cache", work / "out"
    synthetic_articles(articles, count)
    env = {**os.environ, "BRIEF_CONFIG": os.devnull}
    with fake_server("--latency", "0") as url:
        args = [
            "summarize",
            str(articles),
            "--out",
            str(out),
            "--base-url",
            url,
            "--model",
            "bench",
            "--cache-dir",
            str(cache),
            "--concurrency",
            "32",
        ]
        _, cold = run_cli(args, env)
        if cold.returncode != 0:
            raise RuntimeError(f"cold run failed: {cold.stderr[-500:]}")
        elapsed, warm = run_cli(args, env)
    totals = json.loads((out / "run.json").read_text())["totals"]
    per_thousand = elapsed / count * 1000
    return {
        "figure": f"warm re-run of {count} cached articles (requests; s per 1,000)",
        "value": f"{totals['requests']} req; {per_thousand:.2f} s",
        "target": "0 req; <= 1 s",
        "ok": totals["requests"] == 0 and per_thousand <= 1.0 and warm.returncode == 0,
        "detail": f"{totals['cache_hits']} cache hits, whole CLI process {elapsed:.2f} s",
    }


def token_figures(work: Path) -> list[dict[str, Any]]:
    from pipeline.ingest.documents import document_id, ingest
    from pipeline.ingest.tokens import default_counter

    count = default_counter()
    source_tokens = 0
    documents = 0
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        for doc in ingest(path.read_bytes(), str(path), document_id(path.name)):
            source_tokens += count(doc.text)
            documents += 1
    log = work / "requests.jsonl"
    env = {**os.environ, "BRIEF_CONFIG": os.devnull}
    with fake_server("--latency", "0", "--log", str(log)) as url:
        _, done = run_cli(
            [
                "summarize",
                str(ROOT / "seeds"),
                "--out",
                str(work / "seed-out"),
                "--base-url",
                url,
                "--model",
                "bench",
                "--no-cache",
            ],
            env,
        )
    if done.returncode != 0:
        raise RuntimeError(f"seed run failed: {done.stderr[-500:]}")
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    prompt_tokens = sum(count(message["content"]) for body in sent for message in body["messages"])
    totals = json.loads((work / "seed-out" / "run.json").read_text())["totals"]
    return [
        {
            "figure": "prompt tokens sent per source token (seeds)",
            "value": round(prompt_tokens / source_tokens, 2),
            "target": "(report)",
            "ok": None,
            "detail": f"{prompt_tokens} sent for {source_tokens} source tokens, incl. merge and briefing",
        },
        {
            "figure": "requests per article (seeds, 1500-token chunks)",
            "value": round(totals["requests"] / documents, 2),
            "target": "(report)",
            "ok": None,
            "detail": f"{totals['requests']} requests for {documents} articles (incl. 1 briefing request)",
        },
    ]


def startup(repeats: int) -> dict[str, Any]:
    brief = str(Path(sys.executable).parent / "brief")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([brief, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {
        "figure": f"`brief --help` wall time (median of {repeats})",
        "value": round(median, 3),
        "target": "<= 0.5 s",
        "ok": median <= 0.5,
        "detail": f"min {min(times):.3f} s",
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    width = max(len(r["figure"]) for r in rows)
    print(f"{'figure'.ljust(width)}  {'value':>18}  {'target':>14}  ok    detail")
    for r in rows:
        ok = {True: "yes", False: "NO", None: "-"}[r["ok"]]
        print(f"{r['figure'].ljust(width)}  {str(r['value']):>18}  {r['target']:>14}  {ok:<4}  {r['detail']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    args = parser.parse_args()
    requests = 40 if args.quick else 200
    work = Path(tempfile.mkdtemp(prefix="brief-bench-"))
    try:
        rows = concurrency_efficiency(requests, 0.2, [1, 8, 32] if not args.quick else [8, 32])
        rows.append(client_overhead(100 if args.quick else 500))
        rows.append(warm_rerun(100 if args.quick else 1000, work))
        rows += token_figures(work)
        rows.append(startup(5 if args.quick else 15))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    RESULTS.write_text(json.dumps({"cores": os.cpu_count(), "quick": args.quick, "rows": rows}, indent=2) + "\n")
    return 0 if all(r["ok"] is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
