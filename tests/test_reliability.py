"""Reliability: faults, kills, Ctrl-C, two processes, a corrupt cache, bad input, secrets.

`brief` runs as a real subprocess against the fake server (real HTTP on 127.0.0.1), so signals,
exit codes and files on disk are the ones a user would see.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.cache import DATABASE_NAME, Cache
from tests.brief_args import summarize_args
from tests.fakeserver import FakeOpenAI
from tests.responders import prompt_kind

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # real brief processes, signals and timing

SEEDS = ROOT / "seeds"
SEED_DOCUMENTS = 6  # five files, one holding two stories


def brief_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "BRIEF_"))}
    config = tmp_path / "empty-config.toml"  # an empty config of our own: the user's is never read
    config.touch()
    env.update({"BRIEF_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def brief_args(server: FakeOpenAI, tmp_path: Path, *extra: str, source: Path = SEEDS) -> list[str]:
    args = summarize_args(server.base_url, tmp_path, str(source), chunk_tokens=400)
    return [sys.executable, "-m", "pipeline", *args, *extra]


def run_brief(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


def manifest(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "out" / "run.json").read_text())


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def body_key(body: dict) -> str:
    return json.dumps(body["messages"], ensure_ascii=False, sort_keys=True)


def test_one_request_in_five_failing_still_completes_every_article(tmp_path):
    faults = ["429", "500", "malformed", "length", "hang"]
    with FakeOpenAI(fault_every=5, faults=faults, hang_seconds=3) as fake:
        done = run_brief(brief_args(fake, tmp_path, "--timeout", "1"), brief_env(tmp_path))
        received = len(fake.bodies())
    assert done.returncode == 0, done.stderr
    rows = manifest(tmp_path)["inputs"]
    assert all(r["status"] == "ok" for r in rows)
    assert sum(len(r["documents"]) for r in rows) == SEED_DOCUMENTS
    assert manifest(tmp_path)["totals"]["requests"] == received  # retries are counted as requests
    assert received >= 5 and manifest(tmp_path)["client"]["retries"] >= 1


def test_sigkill_then_rerun_completes_without_resending_finished_requests(tmp_path):
    env = brief_env(tmp_path)
    with FakeOpenAI(latency=0.4) as fake:
        proc = subprocess.Popen(
            brief_args(fake, tmp_path, "--concurrency", "1"),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: len(fake.completed_bodies()) >= 3)
        time.sleep(0.15)  # mid-way through the next request: the finished ones have been handled
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        # Brief's own prompts: the endpoint's schema probe is remembered, not a cached call.
        finished_before_kill = {body_key(b) for b in fake.completed_bodies() if prompt_kind(b) != "other"}
        fake.reset()
        fake.latency = 0.0
        done = run_brief(brief_args(fake, tmp_path), env)
        resent = [b for b in fake.bodies() if body_key(b) in finished_before_kill]
    assert done.returncode == 0, done.stderr
    assert sum(len(r["documents"]) for r in manifest(tmp_path)["inputs"]) == SEED_DOCUMENTS
    assert resent == []
    assert manifest(tmp_path)["totals"]["cache_hits"] >= len(finished_before_kill)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_writes_what_finished_and_exits_130(tmp_path, stop):
    with FakeOpenAI(latency=0.3) as fake:
        proc = subprocess.Popen(
            brief_args(fake, tmp_path, "--concurrency", "1"),
            env=brief_env(tmp_path),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: len(fake.completed_bodies()) >= 4)
        proc.send_signal(stop)
        _, stderr = proc.communicate(timeout=30)
        sent_after = len(fake.bodies())
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    run = manifest(tmp_path)
    assert run["interrupted"] is True
    assert any(r["status"] == "interrupted" for r in run["inputs"])
    for row in run["inputs"]:
        for doc in row["documents"]:
            json.loads((tmp_path / "out" / f"{doc}.json").read_text())  # finished articles are whole
    assert sent_after <= 4 + 2  # no new work after the signal (what was in flight may finish)


def test_two_processes_share_a_folder_and_cache(tmp_path):
    env = brief_env(tmp_path)
    with FakeOpenAI(latency=0.05) as fake:
        procs = [
            subprocess.Popen(
                brief_args(fake, tmp_path),
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outcomes = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    for path in (tmp_path / "out").glob("*.json"):
        json.loads(path.read_text())
    cache = Cache(tmp_path / "cache")
    assert cache.stats().corrupt == 0
    keys = cache.entries()
    assert keys and all(cache.get(key) is not None for key in keys)


def test_corrupt_cache_entries_are_misses_reported_not_crashes(tmp_path):
    env = brief_env(tmp_path)
    with FakeOpenAI() as fake:
        args = brief_args(fake, tmp_path, source=SEEDS / "003_5cb4fd5a6fe695d5.txt")
        assert run_brief(args, env).returncode == 0
        first = len(fake.bodies())
        with sqlite3.connect(tmp_path / "cache" / DATABASE_NAME) as db:  # model calls and the article's results
            entries = [key for (key,) in db.execute("SELECT key FROM entries ORDER BY key")]
            for n, key in enumerate(entries):
                db.execute(
                    "UPDATE entries SET value = CASE WHEN ? THEN substr(value, 1, length(value) / 2) "
                    "ELSE x'00' END WHERE key = ?",
                    (n % 2, key),
                )
        done = run_brief(args, env)
        resent = len(fake.bodies()) - first
    assert done.returncode == 0, done.stderr
    assert resent == first  # every damaged entry was a miss, so every call went out again
    assert "cache" in done.stderr.lower()
    assert manifest(tmp_path)["client"]["corrupt_cache_entries"] == len(entries)
    assert Cache(tmp_path / "cache").stats().corrupt == 0  # the misses were rewritten whole


def make_bad_inputs(folder: Path) -> dict[str, str]:
    """Bad inputs beside two good ones; returns file name → a word its error must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good1.txt").write_bytes((SEEDS / "000_35dc785b65d2bec5.txt").read_bytes())
    (folder / "good2.txt").write_bytes((SEEDS / "003_5cb4fd5a6fe695d5.txt").read_bytes())
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.txt").write_bytes(b" \n\t\r\n   \n")
    (folder / "undecodable.txt").write_bytes(b"\x80\xff\x80\xfe" * 40)
    (folder / "huge.txt").write_bytes("新聞內容。".encode() * 350_000)  # about 5 MB
    os.symlink("loop_b.txt", folder / "loop_a.txt")
    os.symlink("loop_a.txt", folder / "loop_b.txt")
    return {
        "binary.txt": "binary",
        "empty.txt": "empty",
        "blank.txt": "empty",
        "undecodable.txt": "decod",
        "huge.txt": "large",
        "loop_a.txt": "symlink",
        "loop_b.txt": "symlink",
    }


def test_bad_inputs_each_get_one_line_and_the_rest_complete(tmp_path):
    expected = make_bad_inputs(tmp_path / "in")
    with FakeOpenAI() as fake:
        done = run_brief(brief_args(fake, tmp_path, source=tmp_path / "in"), brief_env(tmp_path))
    assert done.returncode == 1
    rows = {Path(r["source"]).name: r for r in manifest(tmp_path)["inputs"]}
    assert rows["good1.txt"]["status"] == rows["good2.txt"]["status"] == "ok"
    for name, word in expected.items():
        assert rows[name]["status"] == "failed", name
        assert name in rows[name]["error"] and word in rows[name]["error"].lower(), rows[name]["error"]
        lines = [line for line in done.stderr.splitlines() if name in line]
        assert len(lines) == 1, (name, done.stderr)
    assert (tmp_path / "out" / "good1.json").exists() and (tmp_path / "out" / "good2.json").exists()


def interpreter_for_nobody(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A Python that user nobody may run, importing brief from this checkout and its venv.

    Our interpreter may live under root's private home; the system one of the same version can
    run the venv's packages when they are on PYTHONPATH.
    """
    import site
    import sysconfig

    paths = os.pathsep.join([str(ROOT), *site.getsitepackages(), sysconfig.get_paths()["purelib"]])
    for python in (sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"):
        trial = {**env, "PYTHONPATH": paths}
        try:
            probe = subprocess.run(
                [python, "-c", "import pipeline.cli, openai, tiktoken"],
                env=trial,
                cwd="/",
                user=65534,
                capture_output=True,
                timeout=60,
            )
        except (PermissionError, FileNotFoundError):
            continue
        if probe.returncode == 0:
            return python, trial
    pytest.skip("no Python interpreter here that user nobody may run")


@pytest.mark.skipif(not hasattr(os, "setuid"), reason="needs POSIX users")
def test_unreadable_file_fails_alone(tmp_path):
    """A file the user may not read. As root nothing is unreadable, so run brief as nobody."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="brief-perm-"))
    folder = work / "in"
    folder.mkdir()
    (folder / "good.txt").write_bytes((SEEDS / "003_5cb4fd5a6fe695d5.txt").read_bytes())
    secret = folder / "secret.txt"
    secret.write_bytes((SEEDS / "000_35dc785b65d2bec5.txt").read_bytes())
    secret.chmod(0)
    as_root = os.geteuid() == 0
    if as_root:
        for path in (work, folder):
            path.chmod(0o777)
    env = brief_env(work)
    user = None
    if as_root:
        python, env = interpreter_for_nobody(env)
    else:
        python = sys.executable
    with FakeOpenAI() as fake:
        args = [
            python,
            "-m",
            "pipeline",
            "summarize",
            str(folder),
            "--out",
            str(work / "out"),
            "--base-url",
            fake.base_url,
            "--model",
            "m",
            "--no-cache",
        ]
        user = 65534 if as_root else None
        done = subprocess.run(args, capture_output=True, text=True, env=env, cwd="/", user=user, timeout=120)
    assert done.returncode == 1, done.stderr
    rows = {Path(r["source"]).name: r for r in json.loads((work / "out" / "run.json").read_text())["inputs"]}
    assert rows["good.txt"]["status"] == "ok"
    assert rows["secret.txt"]["status"] == "failed" and "permission" in rows["secret.txt"]["error"].lower()


def test_api_key_never_printed_at_any_verbosity_nor_stored(tmp_path):
    secret = "sk-live-UNMISTAKABLE-9f8e7d6c5b4a"
    env = brief_env(tmp_path, OPENAI_API_KEY=secret)
    with FakeOpenAI(require_key=secret, fault_every=4, faults=["500"]) as fake:
        done = run_brief([sys.executable, "-m", "pipeline", "-vv", *brief_args(fake, tmp_path)[3:]], env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HTTP" in done.stderr  # -vv really printed request-level logs
    assert secret not in done.stdout and secret not in done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_ctrl_c_while_starting_says_nothing_was_written(tmp_path):
    # A busy local server: the start-up schema probe takes seconds; Ctrl-C then must not claim run.json exists.
    with FakeOpenAI() as fake:
        fake.cpu_pace = 1.0  # ten seconds a reply
        proc = subprocess.Popen(
            brief_args(fake, tmp_path),
            env=brief_env(tmp_path),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: len(fake.bodies()) >= 1)  # the probe is in flight
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "nothing written" in stderr
    assert not (tmp_path / "out" / "run.json").exists()
