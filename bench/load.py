"""Python load generator, used by bench/run.py when wrk is not installed.

usage: load.py BASE_URL WRITE_KEY batch|single CONNECTIONS SECONDS -> prints requests/s
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
import uuid

import aiohttp
import orjson


def batch_body() -> bytes:
    return orjson.dumps(
        {
            "batch": [
                {
                    "type": "track",
                    "userId": "u1",
                    "event": "Order Completed",
                    "messageId": str(uuid.uuid4()),
                    "timestamp": "2026-11-25T12:00:00.123+00:00",
                    "properties": {"revenue": 9.99, "currency": "USD"},
                    "context": {"ip": "1.2.3.4", "userAgent": "Mozilla/5.0"},
                }
                for _ in range(500)
            ],
            "sentAt": "2026-11-25T12:00:01.000+00:00",
        }
    )


def single_body() -> bytes:
    return orjson.dumps(
        {"userId": "u1", "event": "Order Completed", "messageId": str(uuid.uuid4())}
    )


async def main(base: str, key: str, mode: str, connections: int, seconds: float) -> None:
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        "Content-Type": "application/json",
    }
    make = batch_body if mode == "batch" else single_body
    path = "/v1/batch" if mode == "batch" else "/v1/track"
    done = 0
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < stop:
                async with session.post(base + path, data=make(), headers=headers) as r:
                    await r.read()
                    r.raise_for_status()
                    done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        print(done / (time.monotonic() - started))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
