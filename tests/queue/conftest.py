"""Queue backends under the same contract. Each fixture yields a factory: calling it again
gives a new instance on the same storage (a restart of the process using it). Both lease a
pulled batch for 1 s (the SQLite lease, JetStream's ack wait) unless given `lease=`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from eventrelay.queue.base import Queue
from eventrelay.queue.nats import NatsQueue
from eventrelay.queue.sqlite import SqliteQueue
from eventrelay.settings import Settings
from tests.support.nats import nats_server

QueueFactory = Callable[..., Awaitable[Queue]]


@pytest.fixture(params=["sqlite", "nats"])
async def queue_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[QueueFactory]:
    opened: list[Queue] = []

    async def closing() -> None:
        for q in opened:
            await q.close()
        opened.clear()

    if request.param == "sqlite":

        async def make(lease: float = 1.0) -> Queue:
            await closing()
            q: Queue = SqliteQueue(tmp_path / "queue.db", synchronous="normal", lease_seconds=lease)
            await q.start()
            opened.append(q)
            return q

        yield make
        await closing()
        return

    with nats_server(tmp_path / "nats") as server:
        settings = Settings(
            data_dir=tmp_path,
            queue_url=server.url,
            secret_key=Fernet.generate_key().decode(),
            nats_ack_wait_seconds=1.0,
            nats_storage="file",
        )

        async def make_nats(lease: float = 1.0) -> Queue:
            await closing()
            q: Queue = NatsQueue(settings.model_copy(update={"nats_ack_wait_seconds": lease}))
            await q.start()
            opened.append(q)
            return q

        yield make_nats
        await closing()
