"""Queue backends under the same contract. Each fixture yields a factory: calling it again
gives a new instance on the same storage (a restart)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from eventrelay.queue.base import Queue
from eventrelay.queue.sqlite import SqliteQueue

QueueFactory = Callable[[], Awaitable[Queue]]


@pytest.fixture(params=["sqlite"])
async def queue_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[QueueFactory]:
    opened: list[Queue] = []

    async def make() -> Queue:
        for q in opened:
            await q.close()
        opened.clear()
        q = SqliteQueue(tmp_path / "queue.db", synchronous="normal")
        await q.start()
        opened.append(q)
        return q

    yield make
    for q in opened:
        await q.close()
