"""The bench's instruments: the fast fake server, the event-loop stall probe, the CPU sampler, the inputs."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakeserver import default_responder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import pipeline_bench  # noqa: E402
import profile_pipeline  # noqa: E402

MESSAGES: Any = [
    {"role": "system", "content": "Summarise."},
    {"role": "user", "content": "Part 1 of 1, language zh:\n\n<article>\n英偉達股價上漲，黃仁勳表示樂觀。\n</article>"},
]
MAP_BODY = {"model": "m", "messages": MESSAGES}


@pytest.fixture(scope="module")
def fast() -> Iterator[str]:
    with pipeline_bench.fake_server(latency=0.3, piece_chars=5) as server:
        yield server.url


def _raw(url: str, payloads: list[bytes], reads: int) -> list[bytes]:
    """Send raw HTTP on one connection; return what each recv gave (one recv per expected reply)."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        got = []
        for payload in payloads:
            conn.sendall(payload)
            time.sleep(0.45)  # past the latency: the whole reply is there
            got.append(conn.recv(1 << 20))
        return got[:reads]


def _post(body: bytes, path: str = "/v1/chat/completions") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def test_reply_is_the_scripted_models_and_arrives_in_one_write(fast: str) -> None:
    [reply] = _raw(fast, [_post(json.dumps(MAP_BODY).encode())], 1)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    length = int(headers[b"Content-Length"])
    assert len(body) == length  # headers and the whole body in the first read
    content = json.loads(body)["choices"][0]["message"]["content"]
    assert content == default_responder(MAP_BODY)
    assert json.loads(content)["glossary"][0]["target"] == "Nvidia"


def test_one_connection_serves_several_requests_and_survives_bad_ones(fast: str) -> None:
    replies = _raw(
        fast,
        [_post(b"{not json"), _post(b"{}", "/v1/nothing"), _post(json.dumps(MAP_BODY).encode())],
        3,
    )
    assert [r.split(b" ")[1] for r in replies] == [b"400", b"404", b"200"]


def test_streamed_reply_through_the_openai_sdk_equals_the_plain_one(fast: str) -> None:
    from openai import AsyncOpenAI

    async def both() -> tuple[str, str, int]:
        client = AsyncOpenAI(base_url=fast, api_key="x", max_retries=0)
        try:
            plain = await client.chat.completions.create(model="m", messages=MESSAGES)
            stream = await client.chat.completions.create(
                model="m",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            pieces, usage = [], 0
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if chunk.usage:
                    usage = chunk.usage.prompt_tokens
            return plain.choices[0].message.content or "", "".join(pieces), usage
        finally:
            await client.close()

    plain, streamed, usage = asyncio.run(both())
    assert streamed == plain == default_responder(MAP_BODY)
    assert usage > 0


def test_latency_is_a_timer_not_a_queue(fast: str) -> None:
    from openai import AsyncOpenAI

    async def many() -> float:
        client = AsyncOpenAI(base_url=fast, api_key="x", max_retries=0)
        started = time.perf_counter()
        try:
            await asyncio.gather(*(client.chat.completions.create(model="m", messages=MESSAGES) for _ in range(40)))
        finally:
            await client.close()
        return time.perf_counter() - started

    elapsed = asyncio.run(many())
    assert 0.3 <= elapsed < 2.0  # 40 requests x 0.3 s in parallel, not 12 s in a row


STALLING = """
import asyncio, time

def block_for_40ms():
    end = time.perf_counter() + 0.04
    while time.perf_counter() < end:
        pass

async def main():
    await asyncio.sleep(0.01)
    block_for_40ms()
    await asyncio.sleep(0.01)
    time.sleep(0.001)

asyncio.run(main())
"""


def test_stall_probe_times_the_slow_callback_and_names_the_code(tmp_path: Path) -> None:
    log = tmp_path / "stalls.json"
    env = {**os.environ, "PYTHONPATH": str(pipeline_bench.STALL_PROBE), "BRIEF_STALL_LOG": str(log)}
    subprocess.run([sys.executable, "-c", STALLING], env=env, check=True, timeout=60)
    report = json.loads(log.read_text())
    assert report["stalls"] == 1
    assert 35 <= report["max_ms"] < 1000
    [stall] = report["slowest"]
    assert any("block_for_40ms" in frame for sample in stall["samples"] for frame in sample)


def test_cpu_sampler_charges_the_function_that_burns_cpu() -> None:
    def burn() -> None:
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass

    sampler = profile_pipeline.Sampler()
    sampler.start()
    try:
        burn()
    finally:
        sampler.stop()
    charged = sum(cpu for stack, cpu in sampler.samples.items() if any(f.endswith("|burn") for f in stack))
    assert charged >= 0.2
    assert charged >= 0.8 * sum(sampler.samples.values())


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/w/.venv/lib/python3.11/site-packages/httpcore2/_async/connection.py", "httpcore2"),
        ("/work/main/pipeline/ingest/chunk.py", "pipeline/ingest/chunk"),
        ("/root/.pyenv/versions/3.11.7/lib/python3.11/asyncio/events.py", "stdlib:asyncio"),
        ("<frozen importlib._bootstrap>", "import machinery"),
        ("<frozen posixpath>", "stdlib:posixpath"),
    ],
)
def test_profile_areas(path: str, expected: str) -> None:
    assert profile_pipeline.area(path) == expected


def test_one_chunk_articles_are_short_and_distinct(tmp_path: Path) -> None:
    pipeline_bench.one_chunk_articles(tmp_path, 200)
    texts = [p.read_text(encoding="utf-8") for p in sorted(tmp_path.iterdir())]
    assert len(texts) == len(set(texts)) == 200
    assert all(150 <= len(t) <= 260 for t in texts)


@pytest.mark.slow
def test_real_size_copies_make_every_document_unique(tmp_path: Path) -> None:
    pipeline_bench.real_size_articles(tmp_path / "copies", 2)
    seeds = pipeline_bench.cleaned_documents(pipeline_bench.SEEDS)
    copies = pipeline_bench.cleaned_documents(tmp_path / "copies")
    assert len(copies) == 2 * len(seeds)
    assert len({d["text"] for d in copies}) == len(copies)
