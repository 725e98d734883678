"""Following a source's live view (GET /v1/admin/sources/{id}/live) in tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from eventrelay.commands.tail import sse_messages


class Follower:
    """Reads one live stream in the background."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []
        self.status: int | None = None
        self.ready = asyncio.Event()
        self.ended = asyncio.Event()  # the server ended the stream

    async def wait_for(self, predicate: Any, timeout: float = 15) -> list[Any]:
        async def until() -> list[Any]:
            while True:
                found = [
                    data for kind, data in self.messages if kind == "event" and predicate(data)
                ]
                if found:
                    return found
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(until(), timeout)

    def outcomes(self, message_id: str) -> dict[str, list[Any]]:
        """Delivery outcomes seen so far for one event, per integration id, in order."""
        out: dict[str, list[Any]] = {}
        for kind, data in self.messages:
            if kind == "outcomes":
                for item in data["outcomes"]:
                    if item["message_id"] == message_id:
                        out.setdefault(item["integration_id"], []).append(item)
        return out


@asynccontextmanager
async def follow(url: str, source_id: str, token: str) -> AsyncIterator[Follower]:
    follower = Follower()

    async def read() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        timeout = httpx.Timeout(10, read=None)
        async with (
            httpx.AsyncClient(timeout=timeout) as client,
            client.stream("GET", f"{url}/v1/admin/sources/{source_id}/live", headers=headers) as r,
        ):
            follower.status = r.status_code
            lines: list[str] = []
            async for line in r.aiter_lines():
                lines.append(line)
                if line == "":
                    for kind, data in sse_messages(lines):
                        follower.messages.append((kind, json.loads(data)))
                        if kind == "ready":
                            follower.ready.set()
                    lines = []
        follower.ended.set()

    task = asyncio.create_task(read())
    try:
        await asyncio.wait_for(follower.ready.wait(), 15)
        yield follower
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def eventually(check: Any, timeout: float = 10) -> None:
    async def until() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(until(), timeout)
