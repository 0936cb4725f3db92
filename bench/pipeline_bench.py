"""Bench helpers: run whole `brief` processes against a fake server process and measure them.

Every figure in bench/run.py is a `brief` process (the console script of this venv, config file
off, fresh output and cache folders), timed from outside: wall time, the process's own user+sys
CPU and peak RSS from os.wait4 (exact per child, unlike RUSAGE_CHILDREN, which sums and maxes
over every child waited for), and the totals it wrote to run.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BRIEF = Path(sys.executable).parent / "brief"
SEEDS = ROOT / "seeds"
SERVERS = {"fast": ROOT / "tests" / "fastfake.py", "threaded": ROOT / "tests" / "fakeserver.py"}
STALL_PROBE = ROOT / "bench" / "stallprobe"
PYCACHE = Path.home() / ".cache" / "brief-bench" / "pycache"


class BenchError(RuntimeError):
    """A measured process failed or produced no usable result."""


@dataclass
class ProcessCost:
    """What one finished process cost, measured from outside it."""

    wall: float
    user: float
    sys: float
    max_rss_mb: float
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def run_process(argv: list[str], env: dict[str, str] | None = None, stdin: int | None = None) -> ProcessCost:
    """Run argv to completion; its own CPU and peak RSS come from wait4 on its pid."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL if stdin is None else stdin, stdout=out, stderr=err, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        return ProcessCost(
            wall=wall,
            user=usage.ru_utime,
            sys=usage.ru_stime,
            max_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
            returncode=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


def brief_env(**extra: str) -> dict[str, str]:
    """The environment of a measured brief: no config file, no endpoint or BRIEF_* settings leaking in.

    Bytecode is cached (in PYCACHE, outside the tree) as an installed brief has it: with
    PYTHONDONTWRITEBYTECODE set, every run compiled brief's ~70 modules afresh (~0.15 s of CPU
    charged to the run, and less of it to `brief --help`).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIEF_", "OPENAI_"))}
    env["BRIEF_CONFIG"] = os.devnull
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra)
    return env


@dataclass
class Server:
    """A fake OpenAI server in its own process; `cpu` is filled in when it stops."""

    url: str
    proc: subprocess.Popen[str]
    cpu: float = 0.0
    answered: int = 0


@contextmanager
def fake_server(
    latency: float = 0.0, log: Path | None = None, kind: str = "fast", piece_chars: int = 0
) -> Iterator[Server]:
    """Start a fake server (tests/fastfake.py by default) in its own process; yield it, then stop it."""
    argv = [sys.executable, str(SERVERS[kind]), "--port", "0", "--latency", str(latency)]
    if log is not None:
        argv += ["--log", str(log)]
    if piece_chars:
        argv += ["--piece-chars", str(piece_chars)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    server = Server(url="", proc=proc)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("READY "):
            raise BenchError(f"fake server did not start: {line!r}")
        server.url = line.split()[1]
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = 0
            server.cpu = usage.ru_utime + usage.ru_stime
        except ChildProcessError:
            pass
        if proc.stdout:
            proc.stdout.close()


@dataclass
class BriefRun:
    """One `brief summarize` process and what it wrote."""

    cost: ProcessCost
    out: Path
    cache: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, Any]:
        return dict(self.manifest.get("totals", {}))

    @property
    def requests(self) -> int:
        return int(self.totals.get("requests", 0))


def summarize(
    inputs: Path,
    work: Path,
    url: str | None,
    concurrency: int = 32,
    cache: Path | None = None,
    env: dict[str, str] | None = None,
    extra: list[str] | None = None,
    out: Path | None = None,
) -> BriefRun:
    """Run `brief summarize inputs` into a fresh output folder and cache unless given; url None runs offline."""
    out = out or Path(tempfile.mkdtemp(prefix="out-", dir=work))
    cache = cache or Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    argv = [str(BRIEF), "summarize", str(inputs), "--out", str(out), "--cache-dir", str(cache)]
    argv += ["--offline"] if url is None else ["--base-url", url, "--model", "bench", "--concurrency", str(concurrency)]
    cost = run_process(argv + (extra or []), env or brief_env())
    manifest_path = out / "run.json"
    if cost.returncode != 0 or not manifest_path.exists():
        raise BenchError(f"brief exited {cost.returncode}: {cost.stderr.strip()[-800:]}")
    return BriefRun(cost=cost, out=out, cache=cache, manifest=json.loads(manifest_path.read_text(encoding="utf-8")))


# -- inputs ---------------------------------------------------------------------------------------

_SENTENCES = (
    "阿里巴巴今日發布通義千問新版本，開發者社區反應熱烈。",
    "英偉達股價在盤後交易中上漲，分析人士認為需求仍然強勁。",
    "黃仁勳表示，人工智能競賽遠未結束，各方仍在加速投入。",
    "硅谷多家初創公司開始採用中國開源模型，以降低推理成本。",
    "報道指出，新模型在數學和編程測試中表現良好，但仍有不足。",
    "監管機構正在研究新的出口管制措施，業界對此看法不一。",
    "多所大學宣布與企業合作，共同培養人工智能領域的人才。",
    "DeepSeek 發布的推理模型引發廣泛討論，下載量持續上升。",
    "OpenAI 的發言人拒絕就相關傳聞發表評論。",
    "朱雀三號火箭完成又一次發動機試車，計劃年內再次發射。",
    "專家提醒，模型的安全評估和數據治理同樣不可忽視。",
    "地方政府推出算力補貼政策，吸引企業在當地設立數據中心。",
)


def one_chunk_articles(folder: Path, count: int) -> Path:
    """`count` distinct short Chinese articles (~200 characters: one chunk each), like a day's wire copy."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(_SENTENCES)
    for i in range(count):
        picks = [_SENTENCES[(i * 7 + k * 5) % n] for k in range(6)]
        title = f"第{i}號快訊：人工智能產業動態"
        # 第二/第三: the scripted model's "Second point", "Third point" must find their figures, or
        # the faithfulness check asks for a repair and every article costs two requests.
        body = (
            f"{title}\n{picks[0]}{picks[1]}\n{picks[2]}{picks[3]}第{i}項測試結果今日公布。\n"
            f"{picks[4]}{picks[5]}業界預計第二和第三季度的需求仍將增長。"
        )
        (folder / f"article_{i:05d}.txt").write_text(body + "\n", encoding="utf-8")
    return folder


def cleaned_documents(path: Path) -> list[dict[str, Any]]:
    """`brief clean --json path`: the documents brief would summarise."""
    done = run_process([str(BRIEF), "clean", "--json", str(path)], brief_env())
    if done.returncode != 0:
        raise BenchError(f"brief clean failed: {done.stderr[-500:]}")
    documents: list[dict[str, Any]] = json.loads(done.stdout)
    return documents


def real_size_articles(folder: Path, copies: int) -> Path:
    """`copies` copies of every seed file, each story made unique by one added sentence.

    The sentence goes at the end of each story's first long paragraph, so it survives cleaning
    and lands in every story of a multi-story file: no two documents (and no two chunks) are
    the same, and the cold cache stays cold.
    """
    folder.mkdir(parents=True, exist_ok=True)
    anchors: dict[str, list[str]] = {}
    for doc in cleaned_documents(SEEDS):
        raw = Path(doc["source"]).read_text(encoding="utf-8")
        # The first long line that cleaning left as it was in the file (not one with a marked span).
        lines = [line[:20] for line in doc["text"].splitlines() if len(line) >= 60 and line[:20] in raw]
        if lines:
            anchors.setdefault(Path(doc["source"]).name, []).append(lines[0])
    for seed in sorted(SEEDS.glob("*.txt")):
        raw = seed.read_text(encoding="utf-8")
        for k in range(copies):
            text = raw
            for anchor in anchors.get(seed.name, []):
                at = text.find(anchor)
                if at < 0:
                    continue
                end = text.find("\n", at)
                end = len(text) if end < 0 else end
                text = text[:end] + f"本文為基準測試第{k}份副本，此句僅用於區分副本。" + text[end:]
            (folder / f"copy{k:04d}_{seed.name}").write_text(text, encoding="utf-8")
    return folder


@dataclass
class Startup:
    """Interpreter start as brief pays it: `brief --help` (Python, site, typer and the CLI module)."""

    wall: float
    cpu: float
    walls: list[float]


def compile_bytecode() -> None:
    """Fill PYCACHE for brief's package before anything is measured (see brief_env)."""
    code = f"import compileall; compileall.compile_dir({str(ROOT / 'pipeline')!r}, quiet=1)"
    run_process([sys.executable, "-c", code], brief_env())


def measure_startup(repeats: int) -> Startup:
    import statistics

    compile_bytecode()
    runs = [run_process([str(BRIEF), "--help"], brief_env()) for _ in range(repeats)]
    if any(r.returncode != 0 for r in runs):
        raise BenchError(f"brief --help failed: {runs[0].stderr[-300:]}")
    return Startup(
        wall=statistics.median(r.wall for r in runs),
        cpu=statistics.median(r.cpu for r in runs),
        walls=[r.wall for r in runs],
    )


def stall_env(log: Path) -> dict[str, str]:
    """The environment that loads bench/stallprobe/sitecustomize.py into the measured brief."""
    return brief_env(PYTHONPATH=str(STALL_PROBE), BRIEF_STALL_LOG=str(log))
