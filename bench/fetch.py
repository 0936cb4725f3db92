"""Benchmark the web source: fetch and extract N pages from a loopback server running in its own process.

    .venv/bin/python bench/fetch.py [--pages 500] [--concurrency 16] [--per-host 16]

Prints pages/s and client CPU ms per page for three passes over the same pages:
  fetch      web_inputs only (HTTP + page metadata, which parses each page once)
  extract    extract_page on the fetched bodies, no network (decode + parse + container + trafilatura)
  both       web_inputs with extract_page on each page as it arrives, what a run does
and the server's own CPU (it shares the machine's two cores with the client).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.ingest.html import extract_page  # noqa: E402
from pipeline.records import RawInput  # noqa: E402
from pipeline.sources.fetch import Fetcher  # noqa: E402
from pipeline.sources.web import WebSource  # noqa: E402


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def fetch_all(urls: list[str], concurrency: int, per_host: int, extract: bool) -> list[RawInput]:
    async with Fetcher(concurrency=concurrency, per_host=per_host, ignore_robots=True) as fetcher:
        source = WebSource(fetcher, window=2 * concurrency)
        inputs = []
        async for raw in source.inputs(urls):
            if extract and raw.payload is not None:
                extract_page(raw.payload, charset=raw.charset, url=raw.meta.url, source=raw.source)
            inputs.append(raw)
        return inputs


def measure(label: str, pages: int, server_pid: int, work: object) -> tuple[float, float]:
    wall, cpu, server = time.perf_counter(), time.process_time(), cpu_of(server_pid)
    result = work() if callable(work) else None
    wall, cpu, server = time.perf_counter() - wall, time.process_time() - cpu, cpu_of(server_pid) - server
    print(
        f"{label:<8} {pages / wall:8.1f} pages/s   client CPU {1000 * cpu / pages:6.2f} ms/page"
        f"   server CPU {1000 * server / pages:5.2f} ms/page   wall {wall:5.2f} s"
    )
    if isinstance(result, list):
        failed = [raw for raw in result if raw.error is not None]
        assert not failed, failed[:3]
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--per-host", type=int, default=16, help="all pages share one host (default 16)")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "webserver.py"), "--bench-pages", str(args.pages)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().split()
        if not line or line[0] != "READY":
            sys.exit("the benchmark server did not start")
        urls = [f"{line[1]}/bench/{n}.html" for n in range(args.pages)]
        print(f"{args.pages} pages, concurrency {args.concurrency}, per host {args.per_host}, 2 cores shared")
        asyncio.run(fetch_all(urls[:20], args.concurrency, args.per_host, extract=True))  # warm imports
        fetched: list[RawInput] = []

        def fetch_only() -> list[RawInput]:
            fetched[:] = asyncio.run(fetch_all(urls, args.concurrency, args.per_host, extract=False))
            return fetched

        def extract_only() -> None:
            for raw in fetched:
                assert raw.payload is not None
                extract_page(raw.payload, charset=raw.charset, url=raw.meta.url, source=raw.source)

        def both() -> list[RawInput]:
            return asyncio.run(fetch_all(urls, args.concurrency, args.per_host, extract=True))

        measure("fetch", args.pages, server.pid, fetch_only)
        measure("extract", args.pages, server.pid, extract_only)
        measure("both", args.pages, server.pid, both)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
