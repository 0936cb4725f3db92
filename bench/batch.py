"""Benchmark Batch jobs: prepare (write request files) and import a results file for N synthetic requests.

Run from the repository root:  .venv/bin/python bench/batch.py [--requests 10000] [--compare 40000] [--json F]
                               .venv/bin/python bench/batch.py --articles 5000 [--compare 10000] [--cli]

Each size runs in its own process and reports CPU seconds and peak RSS per phase. The engine
here is trivial (a bitmap cache); its pending() list of bodies is the protocol's and is measured
on its own ("engine list"), so what remains is the job code's share, which must stay flat as N
grows: request and result files are streamed, only ids are held.

`--articles N` runs the real pipeline instead: N short synthetic articles (one chunk each) through
`prepare`, the import of a results file answered by the scripted model (map, then the briefing),
and the outputs, all in one process as `brief batch run` does, at N and at 2N (`--compare`). It
reports CPU seconds and peak RSS per step, and the row "peak RSS at N vs 2N articles": the growth
per article of the whole job's peak, beside what the run's manifest (the run.json rows, held as
InputReport objects) costs per article. Pending requests are spooled to disk (only ids and request
shapes stay in memory), the run's finished results and run.json rows past 2,000 go to unnamed
temporary files (pipeline/results.py, pipeline/run_report.py), folder listings hold strings, not
Paths, and freed memory is handed back to the system every 256 articles (pipeline/memory.py: glibc
otherwise keeps each article's freed chunks in holes between the few allocations that live on).

`--cli` runs what a user runs instead: `brief batch prepare`, then `brief batch import` of each
round's results file, each its own `brief` process, timed by wait4 (CPU, peak RSS per command).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.batchjob import BatchRequest, import_results, prepare  # noqa: E402

CHUNK_CHARS = 500  # a 500-character Chinese chunk: ~1.5 KB of UTF-8, ~400 tokens
ERROR_EVERY = 200  # one failed line in 200: exercises the follow-up path
JUNK_EVERY = 997


class SyntheticEngine:
    """N map requests over distinct Chinese text; accept() checks the echo and sets a bit."""

    def __init__(self, n: int) -> None:
        self.n = n
        rng = random.Random(7)
        self.text = "".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(CHUNK_CHARS * 64))
        self.done = bytearray(n)

    def request(self, i: int) -> BatchRequest:
        start = (i * 7919) % (len(self.text) - CHUNK_CHARS)
        body = {
            "model": "qwen-plus",
            "messages": [
                {"role": "system", "content": "Summarise the chunk as JSON with points and glossary."},
                {"role": "user", "content": f"#{i}\n" + self.text[start : start + CHUNK_CHARS]},
            ],
            "response_format": {"type": "json_object"},
            "max_tokens": 800,
            "temperature": 0,
        }
        return BatchRequest(f"req-{i:08d}", "map", body, est_prompt_tokens=420)

    async def pending(self) -> list[BatchRequest]:
        return [self.request(i) for i in range(self.n) if not self.done[i]]

    def accept(self, custom_id: str, body: dict[str, Any]) -> str | None:
        try:
            reply = json.loads(body["choices"][0]["message"]["content"])
            index = int(custom_id.removeprefix("req-"))
        except (KeyError, IndexError, TypeError, ValueError):
            return "not a chat completion"
        if not isinstance(reply, dict) or reply.get("echo") != custom_id or not 0 <= index < self.n:
            return "wrong reply"
        self.done[index] = 1
        return None

    async def send_live(self, requests: Sequence[BatchRequest]) -> dict[str, str | None]:
        return {request.custom_id: "no live endpoint in the bench" for request in requests}

    async def finish(self) -> int:
        return 0


def write_results(job_dir: Path, out: Path) -> int:
    """Stream a results file (OpenAI output shape) for every request file of the job; return its lines."""
    lines = 0
    with out.open("w", encoding="utf-8") as sink:
        for path in sorted(job_dir.glob("requests-*.jsonl")):
            with path.open("rb") as source:
                for raw in source:
                    key = json.loads(raw)["custom_id"]
                    lines += 1
                    if lines % JUNK_EVERY == 0:
                        sink.write("Traceback (most recent call last): junk\n")
                    if lines % ERROR_EVERY == 0:
                        error = {"message": "overloaded", "code": "server_error"}
                        line = {"custom_id": key, "response": {"status_code": 500, "body": {"error": error}}}
                        sink.write(json.dumps({"id": f"r{lines}", **line, "error": None}) + "\n")
                        continue
                    content = json.dumps({"echo": key, "points": ["一", "二"], "glossary": []}, ensure_ascii=False)
                    message = {"role": "assistant", "content": content}
                    choice = {"index": 0, "message": message, "finish_reason": "stop"}
                    body = {"id": f"c{lines}", "object": "chat.completion", "model": "qwen-plus", "choices": [choice]}
                    response = {"status_code": 200, "request_id": f"q{lines}", "body": body}
                    sink.write(json.dumps({"id": f"r{lines}", "custom_id": key, "response": response, "error": None}))
                    sink.write("\n")
    return lines


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux ≥ 4.0)
    except OSError:
        pass


def child(n: int) -> dict[str, Any]:
    engine = SyntheticEngine(n)
    base = rss_kb("VmRSS")
    with tempfile.TemporaryDirectory() as tmp:
        job_dir, results = Path(tmp) / "job", Path(tmp) / "results.jsonl"
        reset_peak()
        cpu = time.process_time()
        listed = asyncio.run(engine.pending())
        engine_cpu, engine_peak = time.process_time() - cpu, rss_kb("VmHWM")
        del listed
        reset_peak()
        cpu = time.process_time()
        summary = asyncio.run(prepare(engine, job_dir))
        prepare_cpu, prepare_peak = time.process_time() - cpu, rss_kb("VmHWM")
        lines = write_results(job_dir, results)
        reset_peak()
        cpu = time.process_time()
        report = asyncio.run(import_results(job_dir, results, engine))
        import_cpu, import_peak = time.process_time() - cpu, rss_kb("VmHWM")
        return {
            "requests": n,
            "files": len(summary.stages[0].files),
            "request_mb": round(sum(p.stat().st_size for p in job_dir.glob("requests-map*.jsonl")) / 2**20, 1),
            "results_mb": round(results.stat().st_size / 2**20, 1),
            "result_lines": lines,
            "accepted": report.accepted,
            "junk": report.junk,
            "requeued": report.closed.requeued if report.closed else None,
            "manifest_kb": round((job_dir / "job.json").stat().st_size / 1024, 1),
            "cpu_s": {"engine_list": engine_cpu, "prepare": prepare_cpu, "import": import_cpu},
            "rss_mb": {
                "baseline": base / 1024,
                "engine_list_peak": engine_peak / 1024,
                "prepare_peak": prepare_peak / 1024,
                "import_peak": import_peak / 1024,
            },
        }


# -- the real pipeline ---------------------------------------------------------------------------


def synthetic_articles(folder: Path, n: int) -> None:
    """N short, distinct Chinese articles (a headline and four sentences drawn from the seeds)."""
    rng = random.Random(11)
    text = "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt")))
    pieces = [s.strip() for s in text.replace("\n", "").split("。")]
    sentences = [s + "。" for s in pieces if 12 <= len(s) <= 80 and not any(c in s for c in "()[]!")]
    folder.mkdir(parents=True)
    for i in range(n):
        body = "".join(rng.sample(sentences, 4))
        (folder / f"a{i:06d}.txt").write_text(f"第{i}號報道:科技新聞摘要\n{body}\n", encoding="utf-8")


def answer_all(job_dir: Path, out: Path) -> int:
    """A results file for every open request file, in the `vllm run-batch` shape, answered by the scripted model."""
    from pipeline.batchjob.manifest import load
    from tests.fakebatch import answer_line
    from tests.responders import scripted_model

    rnd = load(job_dir).open_round()
    lines = 0
    with out.open("w", encoding="utf-8") as sink:
        for record in rnd.files if rnd is not None else []:
            with (job_dir / record.name).open("rb") as source:
                for raw in source:
                    sink.write(json.dumps(answer_line(json.loads(raw), scripted_model, "vllm")) + "\n")
                    lines += 1
    return lines


def measured(label: str, phases: dict[str, Any], fn: Any) -> Any:
    reset_peak()
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    phases[label] = {
        "cpu_s": round(time.process_time() - cpu, 2),
        "wall_s": round(time.perf_counter() - wall, 2),
        "peak_mb": round(rss_kb("VmHWM") / 1024),
        "rss_mb": round(rss_kb("VmRSS") / 1024),
    }
    return result


def manifest_cost(run_json: Path) -> dict[str, float]:
    """What the run's manifest costs per article: run.json on disk, and its rows rebuilt as InputReports."""
    import tracemalloc

    from pipeline.records import InputReport

    data = json.loads(run_json.read_text(encoding="utf-8"))
    rows = data["inputs"]
    tracemalloc.start()
    held = [InputReport.from_json(row) for row in rows]
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    count = max(1, len(held))
    return {"memory_kb": round(memory / count / 1024, 2), "disk_kb": round(run_json.stat().st_size / count / 1024, 2)}


def pipeline_child(n: int) -> dict[str, Any]:
    import os

    from pipeline.batchjob.pipeline_engine import JobInputs, PipelineEngine, create_job
    from pipeline.config import load_settings
    from tests.fakeserver import FakeOpenAI

    phases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as server:  # the server only lists models
        root = Path(tmp)
        (root / "config.toml").touch()
        os.environ["BRIEF_CONFIG"] = str(root / "config.toml")
        synthetic_articles(root / "news", n)
        flags = {"base_url": server.base_url, "model": "fake-qwen", "cache_dir": root / "cache"}
        settings = load_settings(flags, environ={"BRIEF_CONFIG": str(root / "config.toml")})
        job_dir = root / "job"
        os.chdir(root)
        inputs = JobInputs.of(settings, ["news"], root, job_dir / "out")
        create_job(job_dir, inputs)
        base = round(rss_kb("VmRSS") / 1024)

        def step(fn: Any) -> Any:
            engine = PipelineEngine(job_dir, inputs, settings)  # one engine per command, as the CLI does
            try:
                return asyncio.run(fn(engine))
            finally:
                engine.close()

        summary = measured("prepare", phases, lambda: step(lambda e: prepare(e, job_dir)))
        rounds = []
        sent = {"prompt_tokens": 0, "completion_tokens": 0}  # the usage in every result line imported
        while True:
            results = root / f"results-{len(rounds) + 1}.jsonl"
            lines = answer_all(job_dir, results)
            with results.open("rb") as answered:
                for raw in answered:
                    usage = json.loads(raw)["response"]["body"]["usage"]
                    sent = {key: sent[key] + usage[key] for key in sent}
            label = f"import {len(rounds) + 1}"
            report = measured(label, phases, lambda path=results: step(lambda e: import_results(job_dir, path, e)))
            rounds.append({"lines": lines, "accepted": report.accepted, "exit_code": report.exit_code})
            if report.exit_code is not None or len(rounds) > 5:
                break
        outputs = sum(1 for _ in (job_dir / "out").glob("*.json"))
        totals = json.loads((job_dir / "out" / "run.json").read_text(encoding="utf-8"))["totals"]
        return {
            "articles": n,
            "map_requests": summary.requests,
            "est_prompt_tokens": summary.est_prompt_tokens,
            "rounds": rounds,
            "output_json_files": outputs,
            "manifest_kb": round((job_dir / "job.json").stat().st_size / 1024, 1),
            "run_manifest": manifest_cost(job_dir / "out" / "run.json"),
            "tokens": {"imported": sent, "run_json": {key: totals[key] for key in sent}},
            "request_mb": round(sum(p.stat().st_size for p in job_dir.glob("requests-*.jsonl")) / 2**20, 1),
            "baseline_mb": base,
            "peak_mb": max(phase["peak_mb"] for phase in phases.values()),
            "cpu_s": round(sum(phase["cpu_s"] for phase in phases.values()), 2),
            "phases": phases,
        }


def growth_kb(small: dict[str, Any], large: dict[str, Any], label: str | None = None) -> float:
    """Peak RSS growth per added article, in KB: of the whole job, or of one step."""
    peaks = [row["phases"][label]["peak_mb"] if label else row["peak_mb"] for row in (small, large)]
    return (peaks[1] - peaks[0]) * 1024 / max(1, large["articles"] - small["articles"])


def children(flag: str, sizes: list[int]) -> list[dict[str, Any]]:
    """Each size measured in a fresh process of this script (its last stdout line: the row as JSON)."""
    rows = []
    for size in sizes:
        command = [sys.executable, __file__, flag, str(size)]
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def pipeline_main(n: int, compare: int, json_path: Path | None) -> None:
    rows = children("--pipeline-child", [n, *([compare] if compare else [])])
    for row in rows:
        tokens = row["tokens"]
        print(
            f"{row['articles']:,} articles: {row['map_requests']:,} map requests (~{row['est_prompt_tokens']:,} "
            f"prompt tokens), rounds {[r['lines'] for r in row['rounds']]}, {row['output_json_files']:,} .json "
            f"outputs, job.json {row['manifest_kb']} KB, baseline RSS {row['baseline_mb']} MB; "
            f"run.json tokens {tokens['run_json']} (imported {tokens['imported']})"
        )
        for label, phase in row["phases"].items():
            print(
                f"  {label:<9} cpu {phase['cpu_s']:>7.2f} s  wall {phase['wall_s']:>7.2f} s  "
                f"peak RSS {phase['peak_mb']:>5} MB  after {phase['rss_mb']:>5} MB"
            )
        print(f"  {'job':<9} cpu {row['cpu_s']:>7.2f} s  peak RSS {row['peak_mb']:>5} MB")
    if len(rows) == 2:
        small, large = sorted(rows, key=lambda row: row["articles"])
        manifest = large["run_manifest"]
        print(
            f"peak RSS at {small['articles']:,} vs {large['articles']:,} articles: {small['peak_mb']} MB vs "
            f"{large['peak_mb']} MB, {growth_kb(small, large):+.1f} KB/article (target: no growth "
            f"beyond the manifest); the manifest (run.json rows held as InputReports) {manifest['memory_kb']} "
            f"KB/article, {manifest['disk_kb']} KB/article on disk; CPU {small['cpu_s']} s vs {large['cpu_s']} s"
        )
        steps = ", ".join(
            f"{label} {growth_kb(small, large, label):+.1f}" for label in small["phases"] if label in large["phases"]
        )
        print(f"  by step, peak RSS growth in KB/article (cumulative: one process): {steps}")
    if json_path:
        json_path.write_text(json.dumps(rows, indent=1) + "\n")


def cli_child(n: int) -> dict[str, Any]:
    """`brief batch prepare` and each `brief batch import` as their own processes, at n articles."""
    sys.path.insert(0, str(ROOT / "bench"))
    from pipeline_bench import brief_env, run_process

    from pipeline.batchjob.manifest import load

    steps: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthetic_articles(root / "news", n)
        env = brief_env()
        brief = [sys.executable, "-m", "pipeline"]
        nowhere = "http://127.0.0.1:9/v1"  # a vllm run-batch job: no endpoint is contacted
        job, cache = root / "job", root / "cache"
        prepare_argv = ["batch", "prepare", str(root / "news"), "--out", str(job), "--base-url", nowhere]
        commands = [[*prepare_argv, "--model", "fake-qwen", "--cache-dir", str(cache)]]
        rounds = 0
        while commands:
            label = "prepare" if rounds == 0 else f"import {rounds}"
            cost = run_process([*brief, *commands.pop()], env=env)
            if cost.returncode not in (0, 1):
                raise RuntimeError(f"{label}: exit {cost.returncode}: {cost.stderr[-500:]}")
            steps[label] = {"cpu_s": round(cost.cpu, 2), "peak_mb": round(cost.max_rss_mb), "exit": cost.returncode}
            if load(job).open_round() is not None and rounds < 6:
                rounds += 1
                results = root / f"results-{rounds}.jsonl"
                answer_all(job, results)
                commands.append(["batch", "import", str(job), str(results)])
        outputs = sum(1 for _ in (job / "out").glob("*.json"))
    return {"articles": n, "steps": steps, "output_json_files": outputs}


def cli_main(n: int, compare: int, json_path: Path | None) -> None:
    rows = children("--cli-child", [n, *([compare] if compare else [])])
    for row in rows:
        print(f"{row['articles']:,} articles, {row['output_json_files']:,} .json outputs, a brief process per command:")
        for label, step in row["steps"].items():
            cost = f"cpu {step['cpu_s']:>7.2f} s  peak RSS {step['peak_mb']:>5} MB"
            print(f"  brief batch {label:<9} {cost}  exit {step['exit']}")
    if len(rows) == 2:
        small, large = sorted(rows, key=lambda row: row["articles"])
        added = large["articles"] - small["articles"]
        growth = ", ".join(
            f"{label} {(large['steps'][label]['peak_mb'] - step['peak_mb']) * 1024 / added:+.1f}"
            for label, step in small["steps"].items()
            if label in large["steps"]
        )
        print(f"peak RSS growth per added article, by command, KB (target: none beyond the manifest): {growth}")
    if json_path:
        json_path.write_text(json.dumps(rows, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument(
        "--compare", type=int, help="a second size, to show the growth (0: none; default 40,000, or twice --articles)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--articles", type=int, help="run the real pipeline over this many synthetic articles")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pipeline-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cli", action="store_true", help="with --articles: each step as its own brief process")
    parser.add_argument("--cli-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    if args.pipeline_child:
        print(json.dumps(pipeline_child(args.pipeline_child)))
        return
    if args.cli_child:
        print(json.dumps(cli_child(args.cli_child)))
        return
    if args.articles:
        # Asked for, or twice the first size (an explicit 40,000 used to be taken for the default).
        compare = 2 * args.articles if args.compare is None else args.compare
        (cli_main if args.cli else pipeline_main)(args.articles, compare, args.json)
        return
    if args.compare is None:
        args.compare = 40_000
    rows = []
    for n in [args.requests, *([args.compare] if args.compare else [])]:
        done = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout))
    print(f"{'requests':>9} {'files':>5} {'req MB':>7} {'cpu list':>8} {'cpu prep':>8} {'cpu imp':>8}", end="")
    print(f" {'RSS base':>8} {'RSS list':>8} {'RSS prep':>8} {'RSS imp':>8} {'manifest':>8}")
    for row in rows:
        cpu, rss = row["cpu_s"], row["rss_mb"]
        print(f"{row['requests']:>9,} {row['files']:>5} {row['request_mb']:>7} ", end="")
        print(f"{cpu['engine_list']:>7.2f}s {cpu['prepare']:>7.2f}s {cpu['import']:>7.2f}s ", end="")
        print(f"{rss['baseline']:>6.0f}MB {rss['engine_list_peak']:>6.0f}MB {rss['prepare_peak']:>6.0f}MB ", end="")
        print(f"{rss['import_peak']:>6.0f}MB {row['manifest_kb']:>6}KB")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
