"""The client's floor: what sending N streamed chat requests costs with no pipeline at all.

    .venv/bin/python bench/sdk_floor.py --child sdk|aiohttp URL N   (run by bench/run.py --only sdk)

`sdk` is the path brief takes (the openai SDK, its aiohttp transport, the low-level `post` with
`cast_to=object` that brief's backend uses); `aiohttp` is the same requests as plain aiohttp
posts, reading the same server-sent events. Each runs in its own process; its CPU (import
included) is compared with the per-article target: whatever brief does on top comes after this.
"""

from __future__ import annotations

import asyncio
import json
import sys

MESSAGES = [
    {"role": "system", "content": "You summarise news as JSON."},
    {"role": "user", "content": "第1號快訊：人工智能產業動態。" * 10},
]
CONCURRENCY = 32


async def _sdk(url: str, count: int) -> None:
    from openai import AsyncOpenAI, AsyncStream, DefaultAioHttpClient

    client = AsyncOpenAI(base_url=url, api_key="sk-bench", max_retries=0, http_client=DefaultAioHttpClient())
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with gate:
            body = {"model": "bench", "messages": MESSAGES, "stream": True}
            stream = await client.post(
                "/chat/completions", cast_to=object, body=body, stream=True, stream_cls=AsyncStream[object]
            )
            async for _ in stream:
                pass

    await asyncio.gather(*(one() for _ in range(count)))
    await client.close()


async def _aiohttp(url: str, count: int) -> None:
    import aiohttp

    gate = asyncio.Semaphore(CONCURRENCY)
    body = json.dumps({"model": "bench", "messages": MESSAGES, "stream": True})
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            async with gate, session.post(f"{url}/chat/completions", data=body, headers=headers) as reply:
                async for line in reply.content:
                    if line.startswith(b"data: {"):
                        json.loads(line[6:])

        await asyncio.gather(*(one() for _ in range(count)))


def main() -> int:
    if len(sys.argv) != 5 or sys.argv[1] != "--child" or sys.argv[2] not in ("sdk", "aiohttp"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, url, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
    asyncio.run((_sdk if kind == "sdk" else _aiohttp)(url, count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
