"""Cache benchmark: the cost of a put and a get, the old file-per-entry layout against the SQLite store.

Run from the repository root:  .venv/bin/python bench/cache.py  [--entries N] [--json PATH]

Each put is timed on its own (that is how long it holds the event loop). "spaced" leaves 1 ms
between puts, as a real run does (4,000 puts over ~18 s), so background checkpoints can finish;
"back to back" is the worst case. "sqlite, auto-checkpoint" is the same store with SQLite's own
checkpoint in the put path, the policy the module rejects: it shows the fsync stalls.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pipeline.cache as sqlite_cache  # noqa: E402
from pipeline.cache import Cache, cache_key  # noqa: E402


class Store(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...
    def put(self, key: str, value: dict[str, Any]) -> None: ...


class FileCache:
    """The previous layout, as it was: one fsync'd JSON file per entry under a two-character shard."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            entry = json.loads(self.path_for(key).read_bytes().decode("utf-8"))
        except (OSError, ValueError):
            return None
        if entry.get("key") != key or entry.get("checksum") != cache_key({"value": entry["value"]}):
            return None
        value: dict[str, Any] = entry["value"]
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        path = self.path_for(key)
        entry = json.dumps(
            {"format": 1, "key": key, "checksum": cache_key({"value": value}), "value": value}, ensure_ascii=False
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(entry)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)


def reply(n: int) -> dict[str, Any]:
    """A model-call entry of realistic size (~2.5 kB): summary, points, a glossary with CJK terms."""
    glossary = [
        {"source": f"術語{n}-{i}人工智能", "english": f"term {i} of article {n}", "kind": "org"} for i in range(12)
    ]
    data = {
        "title": f"Article {n}: what happened in the AI race",
        "summary": "The chief executive said the country would win the race. " * 8,
        "key_points": [f"Point {i}: a sentence of about a hundred characters, as models write them." for i in range(5)],
        "glossary": glossary,
    }
    return {"data": data, "model": "qwen2.5-7b-instruct", "prompt": "chunk.v3", "usage": [812, 301]}


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    ms = [s * 1000 for s in ordered]
    return {
        "mean_ms": round(statistics.fmean(ms), 4),
        "p50_ms": round(ms[len(ms) // 2], 4),
        "p99_ms": round(ms[int(len(ms) * 0.99)], 4),
        "max_ms": round(ms[-1], 3),
    }


def run(make: Callable[[Path], Store], entries: int, spaced: bool) -> dict[str, dict[str, float]]:
    keys = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(entries)]
    values = [reply(n) for n in range(entries)]
    with tempfile.TemporaryDirectory(prefix="brief-cache-bench-") as folder:
        store = make(Path(folder) / "cache")
        puts = []
        for key, value in zip(keys, values, strict=True):
            puts.append(timed(lambda: store.put(key, value)))  # noqa: B023 (called at once)
            if spaced:
                time.sleep(0.001)
        warm = make(Path(folder) / "cache")  # a re-run: a fresh process opens the cache
        order = keys * (4000 // entries + 1)
        gets = [timed(lambda: warm.get(key)) for key in order[:4000]]  # noqa: B023
        assert all(warm.get(key) == value for key, value in zip(keys, values, strict=True))
        misses = [timed(lambda: warm.get(cache_key({"absent": n}))) for n in range(1000)]  # noqa: B023
    return {"put": summary(puts), "get": summary(gets), "miss": summary(misses)}


def auto_checkpoint(directory: Path) -> Cache:
    """The store with SQLite's own checkpoint (every 1000 WAL pages, in the put that crosses it)."""
    cache = Cache(directory)
    cache.check_writable()
    assert cache._db is not None
    cache._db.execute("PRAGMA wal_autocheckpoint = 1000")
    cache._puts_since_checkpoint = -(10**9)  # never start the background one
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    stores: dict[str, Callable[[Path], Store]] = {"files (old)": FileCache, "sqlite": Cache}
    figures: dict[str, Any] = {}
    for spaced in (True, False):
        for name, make in [*stores.items(), ("sqlite, auto-checkpoint", auto_checkpoint)]:
            label = f"{name}, {'spaced' if spaced else 'back to back'}"
            figures[label] = run(make, args.entries, spaced)
    print(f"{args.entries} puts of ~{len(json.dumps(reply(0)).encode())} B, 4000 warm gets, 1000 misses (ms)")
    print(f"{'store':42} {'op':5} {'mean':>8} {'p50':>8} {'p99':>8} {'max':>8}")
    for label, ops in figures.items():
        for op, row in ops.items():
            print(f"{label:42} {op:5} " + " ".join(f"{row[k]:8.3f}" for k in ("mean_ms", "p50_ms", "p99_ms", "max_ms")))
    if args.json:
        args.json.write_text(json.dumps({"checkpoint_every": sqlite_cache._CHECKPOINT_EVERY, **figures}, indent=1))


if __name__ == "__main__":
    main()
