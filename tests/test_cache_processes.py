"""Real processes: two brief processes share one cache; a put that returned survives a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.cache import Cache, cache_key

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# Both writers start together on a folder that does not exist yet (so they also race to create the
# folder and the database), write the same keys with their own values, and read the keys back.
WRITER = r"""
import random, sys, time
from pathlib import Path
from pipeline.cache import Cache, cache_key

folder, me, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
while not go.exists():
    time.sleep(0.001)
cache = Cache(folder)
cache.check_writable()
keys = [cache_key({"n": n}) for n in range(300)]
wrong = seen_other = 0
for n, key in enumerate(keys):
    cache.put(key, {"data": {"n": n, "writer": me, "pad": "長" * (n % 50) * 40}})
    for m in random.sample(range(n + 1), min(n + 1, 3)):
        got = cache.get(keys[m])
        if got is None or got["data"]["n"] != m or got["data"]["pad"] != "長" * (m % 50) * 40:
            wrong += 1
        seen_other += got is not None and got["data"]["writer"] != me
print(wrong, cache.corrupt_reads, seen_other)
"""


def test_two_processes_write_and_read_the_same_keys_at_once(tmp_path: Path) -> None:
    folder, go = tmp_path / "shared" / "cache", tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder), name, str(go)],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    time.sleep(0.5)  # both are imported and waiting
    go.touch()
    outcomes = [writer.communicate(timeout=120) for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], outcomes
    assert all(err == "" for _, err in outcomes), outcomes  # not one warning: no busy skip, no damage
    counts = [tuple(map(int, out.split())) for out, _ in outcomes]
    assert [(wrong, corrupt) for wrong, corrupt, _ in counts] == [(0, 0), (0, 0)]
    assert sum(seen_other for _, _, seen_other in counts) > 0  # they did overlap: one read what the other wrote
    cache = Cache(folder)
    stats = cache.stats()
    assert (stats.entries, stats.corrupt) == (300, 0)
    values = [cache.get(cache_key({"n": n})) for n in range(300)]
    assert all(v is not None and v["data"]["n"] == n and v["data"]["writer"] in "ab" for n, v in enumerate(values))


KILLED = r"""
import sys
from pathlib import Path
from pipeline.cache import Cache, cache_key

cache = Cache(Path(sys.argv[1]))
cache.check_writable()
n = 0
while True:
    cache.put(cache_key({"n": n}), {"data": {"n": n, "text": "新聞" * 200}})
    print(n, flush=True)  # reported only once put() has returned
    n += 1
"""


def test_every_put_that_returned_survives_a_sigkill(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(tmp_path / "cache")], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    reported = [int(proc.stdout.readline()) for _ in range(500)]
    proc.send_signal(signal.SIGKILL)  # mid-way through later puts, maybe mid-checkpoint
    proc.wait(timeout=10)
    cache = Cache(tmp_path / "cache")
    assert [n for n in reported if cache.get(cache_key({"n": n})) is None] == []
    assert cache.stats().corrupt == 0 and cache.corrupt_reads == 0
    cache.put(cache_key({"after": 1}), {"data": {}})  # and the database takes writes again
    assert Cache(tmp_path / "cache").get(cache_key({"after": 1})) == {"data": {}}
