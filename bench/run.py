"""Benchmarks of the whole `brief summarize` process against issue #13's targets; prints a table, writes results.json.

Run from the repository root:  .venv/bin/python bench/run.py  [--quick] [--only NAME ...]

Every figure is a `brief` process (this venv's console script, BRIEF_CONFIG=/dev/null, fresh
--out and --cache-dir in a temporary folder) against the fake server (tests/fastfake.py) in its
own process, so the server's CPU is never charged to brief. CPU is the brief process's own
user+sys time (os.wait4), minus interpreter start (`brief --help`, measured first). See
bench/README.md for what each figure means and bench/profile_pipeline.py for where the CPU goes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import figures  # noqa: E402
from figures import Row  # noqa: E402
from pipeline_bench import ROOT, measure_startup, one_chunk_articles, real_size_articles  # noqa: E402

RESULTS = ROOT / "bench" / "results.json"
NAMES = ("cpu", "sdk", "efficiency", "stalls", "warm", "tokens", "help")


@dataclass(frozen=True)
class Plan:
    """Sizes of every figure: the issue's for a full run, small ones for --quick."""

    one_chunk: int = 640
    real_copies: int = 20
    repeats: int = 3
    efficiency_articles: int = 640
    stall_real_copies: int = 10
    warm_articles: int = 1000
    memory_articles: int = 5000
    help_repeats: int = 5
    streamed_pieces: int = 4  # a row with ~one token per streamed event; 0 skips it
    langchain: bool = True

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            one_chunk=64,
            real_copies=1,
            repeats=1,
            efficiency_articles=64,
            stall_real_copies=0,
            warm_articles=64,
            memory_articles=192,
            help_repeats=3,
            streamed_pieces=0,
            langchain=figures.langchain_python(create=False) is not None,
        )


def measure(plan: Plan, only: set[str], work: Path) -> tuple[list[Row], list[dict[str, Any]]]:
    rows: list[Row] = []
    culprits: list[dict[str, Any]] = []
    startup = measure_startup(plan.help_repeats)
    if "cpu" in only:
        rows.append(figures.cpu_one_chunk(work, plan.one_chunk, plan.repeats, startup))
        if plan.streamed_pieces:
            rows.append(figures.cpu_one_chunk(work, plan.one_chunk, 1, startup, piece_chars=plan.streamed_pieces))
        rows.append(figures.cpu_real_size(work, plan.real_copies, plan.repeats, startup))
    if "sdk" in only:
        rows += figures.sdk_floor(plan.one_chunk, startup)
    if "efficiency" in only:
        for level in (32, 128):
            rows.append(figures.efficiency(work, plan.efficiency_articles, 0.2, level, plan.repeats, startup))
    if "stalls" in only:
        runs = [
            ("one-chunk", one_chunk_articles(work / f"one-{plan.efficiency_articles}", plan.efficiency_articles), 0.2)
        ]
        if plan.stall_real_copies:
            real = real_size_articles(work / f"real-{plan.stall_real_copies}", plan.stall_real_copies)
            runs.append(("real-size", real, 0.05))
        row, culprits = figures.stalls(work, runs)
        cpu_row, cpu_culprits = stalls_by_cpu(work, [name for name, _, _ in runs])
        rows += [row, cpu_row]
        culprits = culprits + cpu_culprits
    if "warm" in only:
        rows += figures.warm_and_memory(work, plan.warm_articles, plan.memory_articles, plan.repeats, startup)
    if "tokens" in only:
        rows += figures.prompt_tokens(work, plan.langchain)
    if "help" in only:
        rows.append(figures.help_row(startup))
    return rows, culprits


def stalls_by_cpu(work: Path, names: list[str]) -> tuple[Row, list[dict[str, Any]]]:
    """The stall runs' largest loop-thread CPU time in one callback, and where it went (bench/README.md).

    Wall time (the row above) is what other tasks waited; CPU time is what our code spent. A
    callback far over 5 ms of wall time with little CPU was waiting: on a loaded machine, mostly
    for the OS to give the thread a core back, which is not brief's to fix.
    """
    worst, over, by_where = 0.0, [], defaultdict(list)
    for name in names:
        report = json.loads((work / f"stalls-{name}.json").read_text(encoding="utf-8"))
        worst = max(worst, float(report.get("max_cpu_ms", 0.0)))
        over.append(f"{name}: {report.get('stalls_by_cpu', 0)} over {report['threshold_ms']:g} ms CPU")
        for stall in report["slowest"]:
            if stall.get("cpu_ms", 0.0) > report["threshold_ms"]:
                where = stall["where"][0][0] if stall.get("where") else f"resumed at {stall['resumed_at']}"
                by_where[where].append(stall["cpu_ms"])
    culprits = [
        {"culprit": where, "max_ms": max(ms), "count": len(ms), "total_ms": round(sum(ms), 1), "by": "cpu"}
        for where, ms in sorted(by_where.items(), key=lambda kv: -max(kv[1]))
    ]
    row = Row(
        figure="largest event-loop stall by loop-thread CPU (ms)",
        value=round(worst, 1),
        target="(report)",
        ok=None,
        detail=", ".join(over) + "; the wall-time figure above is the target's",
        data={"max_cpu_ms": worst},
    )
    return row, culprits


def print_table(rows: list[Row], culprits: list[dict[str, Any]], header: str) -> None:
    print(header)
    width = max(len(r.figure) for r in rows)
    print(f"{'figure'.ljust(width)}  {'measured':>11}  {'target':>18}  ok   detail")
    for r in rows:
        ok = {True: "yes", False: "NO", None: "-"}[r.ok]
        print(f"{r.figure.ljust(width)}  {str(r.value):>11}  {r.target:>18}  {ok:<3}  {r.detail}")
    wall = [c for c in culprits if c.get("by") != "cpu"]
    cpu = [c for c in culprits if c.get("by") == "cpu"]
    tables = (
        ("largest, wall time", wall[:5]),
        ("most stall time in all, wall time", sorted(wall, key=lambda c: -c["total_ms"])[:3]),
        ("largest, loop-thread CPU time", cpu[:5]),
    )
    for title, top in tables:
        if top:
            print(f"\nevent-loop stall culprits, {title} (max ms, stalls, total ms):")
            for c in top:
                print(f"  {c['max_ms']:8.1f}  {c['count']:5}  {c['total_ms']:8.1f}  {c['culprit']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs, once each: a smoke check (< 1 min)")
    parser.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES), help="measure only these figures")
    parser.add_argument("--no-langchain", action="store_true", help="skip the LangChain side-by-side row")
    args = parser.parse_args()
    plan = Plan.quick() if args.quick else Plan()
    if args.no_langchain:
        plan = Plan(**{**plan.__dict__, "langchain": False})
    load = os.getloadavg()[0]
    header = (
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.1f} at start"
        + (
            " (busy machine: wall-time figures are noisy, CPU figures less so)"
            if load > (os.cpu_count() or 1) / 2
            else ""
        )
    )
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="brief-bench-"))
    try:
        rows, culprits = measure(plan, set(args.only), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print_table(rows, culprits, header)
    print(f"\n{elapsed:.0f} s in all; load average {os.getloadavg()[0]:.1f} at the end")
    RESULTS.write_text(
        json.dumps(
            {
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "quick": args.quick,
                "load_average": [load, os.getloadavg()[0]],
                "seconds": round(elapsed, 1),
                "rows": [r.to_json() for r in rows],
                "stall_culprits": [c for c in culprits if c.get("by") != "cpu"][:20],
                "stall_culprits_by_cpu": [c for c in culprits if c.get("by") == "cpu"][:20],
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
