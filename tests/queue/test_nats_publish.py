"""Ingest's publish to JetStream rides through a server that goes away and comes back within
the publish deadline (the client reconnects; what was not acknowledged is published again with
the same message id, stored once), and fails once the deadline has passed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventrelay.queue.base import Message
from eventrelay.queue.nats import NatsQueue
from eventrelay.settings import Settings
from tests.support.nats import NatsServer, nats_server

pytestmark = pytest.mark.nats


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    with nats_server(tmp_path / "nats") as s:
        yield s


async def queue_on(server: NatsServer, tmp_path: Path, deadline: float) -> NatsQueue:
    q = NatsQueue(
        Settings(data_dir=tmp_path, queue_url=server.url, nats_publish_deadline_seconds=deadline)
    )
    await q.start()
    return q


def restart_later(server: NatsServer, after: float) -> None:
    time.sleep(after)
    server.start()


async def test_a_publish_waits_for_the_server_to_come_back(
    server: NatsServer, tmp_path: Path
) -> None:
    q = await queue_on(server, tmp_path, deadline=30)
    try:
        await q.subscribe("int_a", "src_a")
        await q.publish("src_a", [Message("m1", b"{}")])
        server.kill()
        back = asyncio.create_task(asyncio.to_thread(restart_later, server, 0.5))
        await q.publish("src_a", [Message("m1", b"{}"), Message("m2", b"{}")])
        await back
        got = await q.pull("int_a", 10, 5)
        assert sorted(d.message_id for d in got) == ["m1", "m2"]  # m1 stored once
    finally:
        await q.close()


async def test_a_publish_fails_once_the_deadline_has_passed(
    server: NatsServer, tmp_path: Path
) -> None:
    q = await queue_on(server, tmp_path, deadline=0.3)
    try:
        server.stop()
        with pytest.raises(Exception):  # any failure: the API answers 503
            await q.publish("src_a", [Message("m1", b"{}")])
    finally:
        await q.close()
