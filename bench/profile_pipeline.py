"""CPU profile of one `brief summarize` process: where a cold run's CPU goes, in ms per article.

    .venv/bin/python bench/profile_pipeline.py [--articles 640 | --real-copies 20] [--warm] [--latency 0] [--top 25]

Makes one-chunk articles (or copies of the seeds: --real-copies), starts the fast fake server, and
runs the brief CLI in a child process under a CPU-time sampler: SIGPROF every millisecond of
process CPU (waiting on the server costs nothing), each sample weighted by the CPU used since the
last one (a long C call delivers one late signal, not many). While the loop thread waits in
epoll, CPU is charged to a busy worker thread if there is one. Prints CPU by the innermost
pipeline module (what to fix), self CPU by package, the pipeline functions with the most
inclusive CPU and the hottest leaf functions; writes the samples to $TMPDIR/brief-profile.json.
--warm profiles a re-run instead (same inputs, cache and output folder as an unprofiled run before it).
cProfile was tried first: its overhead (3-4x here) skews the picture.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_bench import (  # noqa: E402
    brief_env,
    fake_server,
    one_chunk_articles,
    real_size_articles,
    run_process,
    summarize,
)

PROFILE = Path(tempfile.gettempdir()) / "brief-profile.json"
# Leaf frames of a thread that is waiting, not computing.
WAITS = {
    "stdlib:selectors|select",
    "stdlib:threading|wait",
    "stdlib:threading|_wait_for_tstate_lock",
    "stdlib:queue|get",
    "stdlib:concurrent|_worker",
}


def area(path: str) -> str:
    """The package (or pipeline module) a function's file belongs to."""
    path = path.replace("\\", "/")
    if "/site-packages/" in path:
        return path.rsplit("/site-packages/", 1)[1].split("/")[0].removesuffix(".py")
    if "/pipeline/" in path:
        return "pipeline/" + path.rsplit("/pipeline/", 1)[1].removesuffix(".py")
    match = re.search(r"/python3\.\d+/([^/]+)", path)
    if match:
        return "stdlib:" + match.group(1).removesuffix(".py")
    if path.startswith("<frozen importlib"):
        return "import machinery"
    return "stdlib:" + path[8:-1] if path.startswith("<frozen ") else path  # frozen os, posixpath, ...


def _stack(frame: FrameType | None) -> tuple[str, ...]:
    out: list[str] = []
    while frame is not None and len(out) < 80:
        out.append(f"{area(frame.f_code.co_filename)}|{frame.f_code.co_name}")
        frame = frame.f_back
    return tuple(out)


class Sampler:
    """SIGPROF sampling of the stack that is using CPU, weighted by CPU seconds."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.samples: defaultdict[tuple[str, ...], float] = defaultdict(float)
        self.last = 0.0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        now = time.process_time()
        weight, self.last = now - self.last, now
        stack = _stack(frame)
        if stack and stack[0] in WAITS:  # the loop thread waits: who is using the CPU?
            main = threading.main_thread().ident
            busy = [_stack(f) for ident, f in sys._current_frames().items() if ident != main]
            busy = [b for b in busy if b and b[0] not in WAITS]
            stack = (*busy[0], "[worker thread]") if busy else ("[idle: epoll, kernel]",)
        self.samples[stack] += weight

    def start(self) -> None:
        self.last = time.process_time()
        signal.signal(signal.SIGPROF, self._on_signal)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)


def owner(stack: list[str]) -> str:
    """Who to fix for one sample: imports (one-off), else the innermost pipeline module on the stack.

    Only frames above the event loop's Handle._run count (below it every sample has run_main); a
    task with no pipeline frame (one the SDK or wait_for made) is named by its outermost coroutine.
    """
    if any(frame.startswith("import machinery|") for frame in stack):
        return "[imports, one-off]"
    loop = next((i for i, frame in enumerate(stack) if frame == "stdlib:asyncio|_run"), len(stack))
    ours = next((frame.split("|")[0] for frame in stack[:loop] if frame.startswith("pipeline/")), None)
    if ours:
        return ours
    if 0 < loop < len(stack):
        return f"[task without a pipeline frame: {stack[loop - 1].replace('|', ' ')}]"
    if loop == 0:
        return "[event loop itself]"
    return f"[no pipeline frame: {stack[0].split('|')[0]}]"


def child(argv: list[str], out: Path) -> None:
    """In the child: run the brief CLI under the sampler and dump the samples."""
    from pipeline.cli import main

    sys.argv = ["brief", *argv]
    sampler = Sampler()
    sampler.start()
    try:
        main()
    except SystemExit:
        pass
    finally:
        sampler.stop()
    rows = [{"stack": list(stack), "cpu_s": cpu} for stack, cpu in sampler.samples.items()]
    out.write_text(json.dumps({"cpu_s": time.process_time(), "samples": rows}), encoding="utf-8")


def report(path: Path, articles: int, top: int, plain_cpu: float) -> str:
    data = json.loads(path.read_text(encoding="utf-8"))
    samples: list[tuple[list[str], float]] = [(row["stack"], row["cpu_s"]) for row in data["samples"]]
    total = sum(cpu for _, cpu in samples)
    by_area: dict[str, float] = defaultdict(float)
    by_leaf: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    by_owner: dict[str, float] = defaultdict(float)
    for stack, cpu in samples:
        by_owner[owner(stack)] += cpu
        by_area[stack[0].split("|")[0]] += cpu
        by_leaf[stack[0].replace("|", " ")] += cpu
        for frame in set(stack):
            if frame.startswith("pipeline/"):
                inclusive[frame.replace("|", " ")] += cpu
    per = 1000 / articles

    def table(title: str, rows: dict[str, float]) -> list[str]:
        lines = ["", title]
        for key, seconds in sorted(rows.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"  {seconds * per:7.2f}  {100 * seconds / total:5.1f}%  {key}")
        return lines

    lines = [
        f"sampled CPU {total:.2f} s = {total * per:.2f} ms/article (process {data['cpu_s']:.2f} s); "
        f"the same run unprofiled: {plain_cpu:.2f} s = {plain_cpu * per:.2f} ms/article"
    ]
    lines += table("CPU by the innermost pipeline module, libraries it calls included (ms per article):", by_owner)
    lines += table("self CPU by package / pipeline module (ms per article, share):", by_area)
    lines += table("pipeline functions by inclusive CPU (ms per article, share):", inclusive)
    lines += table("hottest leaf functions (ms per article, share):", by_leaf)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=640)
    parser.add_argument("--real-copies", type=int, default=0, help="profile N copies of the seeds instead")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--warm", action="store_true", help="profile a re-run into the unprofiled run's out and cache")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child[1:], Path(args.child[0]))
        return 0
    with tempfile.TemporaryDirectory(prefix="brief-profile-") as tmp:
        work = Path(tmp)
        if args.real_copies:
            inputs = real_size_articles(work / "articles", args.real_copies)
            args.articles = len(list(inputs.iterdir()))  # per input file
        else:
            inputs = one_chunk_articles(work / "articles", args.articles)
        with fake_server(args.latency) as server:
            plain = summarize(inputs, work, server.url, args.concurrency)
            out, cache = work / "profiled-out", work / "profiled-cache"
            if args.warm:  # a user's re-run: same folder, cache and output folder as the run before
                out, cache = plain.out, plain.cache
                plain = summarize(inputs, work, server.url, args.concurrency, cache=cache, out=out)
            brief_args = ["summarize", str(inputs), "--out", str(out), "--cache-dir", str(cache)]
            brief_args += ["--base-url", server.url, "--model", "bench", "--concurrency", str(args.concurrency)]
            done = run_process([sys.executable, __file__, "--child", str(PROFILE), *brief_args], brief_env())
        if done.returncode != 0 or not PROFILE.exists():
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
    print(report(PROFILE, args.articles, args.top, plain.cost.cpu))
    print(f"\nraw samples: {PROFILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
