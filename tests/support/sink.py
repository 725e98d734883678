"""A real local HTTP server standing in for a vendor or webhook receiver.

It records every request and answers from a programmable script: a status sequence, a fixed
status, extra headers (Retry-After), a delay, or a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.support.server import free_port


@dataclass
class Received:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    at: float
    query: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return orjson.loads(self.body)


Responder = Callable[[Received], "tuple[int, dict[str, str], bytes] | None"]


class Sink:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []  # consumed one per request; then `default`
        self.default = 200
        self.headers: dict[str, str] = {}
        self.body = b'{"ok":true}'
        self.delay = 0.0
        self.responder: Responder | None = None
        self._runner: web.AppRunner | None = None
        self.port = free_port()
        self.changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(
            request.path,
            request.method,
            dict(request.headers),
            await request.read(),
            time.time(),
            dict(request.query),
        )
        self.requests.append(received)
        self.changed.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.responder is not None:
            answer = self.responder(received)
            if answer is not None:
                status, headers, body = answer
                return web.Response(status=status, headers=headers, body=body)
        status = self.statuses.pop(0) if self.statuses else self.default
        return web.Response(status=status, headers=self.headers, body=self.body)

    async def start(self) -> Sink:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def close(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def events(self) -> list[dict[str, Any]]:
        """Every event received (a batch body counts each of its items)."""
        out: list[dict[str, Any]] = []
        for r in self.requests:
            data = r.json()
            out.extend(data if isinstance(data, list) else [data])
        return out

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out waiting for the sink")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.2))
