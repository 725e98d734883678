"""JetStream specifics beyond the shared contract."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from eventrelay.queue.base import Message
from eventrelay.queue.nats import NatsQueue
from eventrelay.queue.nats_msgs import ack_metadata
from eventrelay.settings import Settings
from tests.queue.test_contract import msgs
from tests.support.nats import nats_server


async def test_ack_subject_parsing_matches_the_client_library(tmp_path: Path) -> None:
    with nats_server(tmp_path / "nats") as server:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="META", subjects=["meta.>"])
            for _ in range(3):
                await js.publish("meta.a", b"{}")
            sub = await js.pull_subscribe("meta.a", durable="d")
            first = await sub.fetch(3, timeout=2)
            for msg in first[:2]:
                await msg.nak()
            again = await sub.fetch(2, timeout=2)
            for msg in [*first, *again]:
                published_at, attempts = ack_metadata(msg)
                assert attempts == msg.metadata.num_delivered
                assert abs(published_at - msg.metadata.timestamp.timestamp()) < 1e-3
                assert abs(published_at - time.time()) < 30
            assert {ack_metadata(m)[1] for m in again} == {2}
        finally:
            await nc.close()


async def _old_release_stream(url: str, settings: Settings) -> None:
    """The work-queue stream the release before the log made (483928c's queue/nats.py), with
    events queued for two integrations and one batch held by a worker that then died."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        prefix = settings.nats_subject_prefix + "."
        await js.add_stream(
            StreamConfig(
                name=settings.nats_stream,
                subjects=[prefix + ">"],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                duplicate_window=settings.nats_dedup_window_seconds,
                max_age=settings.max_event_age_seconds + 3600,
            )
        )
        for integration, n in (("int_a", 5), ("int_b", 2)):
            for i in range(n):
                headers = {"Nats-Msg-Id": f"{integration}:old-{i}"}
                await js.publish(prefix + integration, b'{"old":true}', headers=headers)
        consumer = ConsumerConfig(
            durable_name="er-int_a",
            filter_subject=prefix + "int_a",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=1.0,
            max_deliver=-1,
            max_ack_pending=50_000,
        )
        await js.add_consumer(settings.nats_stream, consumer)
        sub = await js.pull_subscribe_bind(durable="er-int_a", stream=settings.nats_stream)
        assert len(await sub.fetch(1, timeout=2)) == 1  # never settled
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def _upgraded(tmp_path: Path) -> AsyncIterator[NatsQueue]:
    """A queue of this release started on a server holding the release before's stream."""
    with nats_server(tmp_path / "nats") as server:
        settings = Settings(data_dir=tmp_path, queue_url=server.url, nats_ack_wait_seconds=1.0)
        await _old_release_stream(server.url, settings)
        q = NatsQueue(settings)
        await q.start()
        try:
            yield q
        finally:
            await q.close()


async def test_events_queued_by_the_release_before_come_out_once(tmp_path: Path) -> None:
    async with _upgraded(tmp_path) as q:
        for stream in ("int_a", "int_b"):
            await q.subscribe(stream, "src")
        await q.publish("src", msgs("new", 3))
        assert await q.depths() == {"int_a": 8, "int_b": 5}
        for stream, old in (("int_a", 5), ("int_b", 2)):
            ids: list[str] = []
            deadline = time.monotonic() + 5
            while len(ids) < old + 3 and time.monotonic() < deadline:
                got = await q.pull(stream, 100, timeout=0.5)
                await q.ack(stream, got)  # within the 1 s lease: none comes back
                ids = sorted(ids + [d.message_id for d in got])
            assert ids == sorted([f"old-{i}" for i in range(old)] + ["new-0", "new-1", "new-2"])
            assert await q.pull(stream, 10, timeout=0.3) == []
        deadline = time.monotonic() + 5
        while (depths := await q.depths()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert depths == {}
        assert q._legacy._pending == {}  # the old stream is not looked at any more


async def test_a_restart_with_another_ack_wait_keeps_the_position(tmp_path: Path) -> None:
    with nats_server(tmp_path / "nats") as server:
        settings = Settings(data_dir=tmp_path, queue_url=server.url, nats_ack_wait_seconds=1.0)
        q = NatsQueue(settings)
        await q.start()
        try:
            await q.subscribe("s", "src")
            await q.publish("src", msgs("k", 3))
            await q.ack("s", await q.pull("s", 2, timeout=2))
        finally:
            await q.close()
        q = NatsQueue(settings.model_copy(update={"nats_ack_wait_seconds": 5.0}))
        await q.start()
        try:
            await q.subscribe("s", "src", since=time.time())  # exists: `since` changes nothing
            [left] = await q.pull("s", 10, timeout=2)
            assert left.message_id == "k-2"
            info = await q._jsx().consumer_info(settings.nats_stream + "_LOG", "er-s")
            assert info.config.ack_wait == 5.0
            assert await q.depth("s") == 1
        finally:
            await q.close()


async def test_a_message_jetstream_refuses_fails_at_once(tmp_path: Path) -> None:
    with nats_server(tmp_path / "nats") as server:
        q = NatsQueue(Settings(data_dir=tmp_path, queue_url=server.url))
        await q.start()
        try:
            started = time.monotonic()
            with pytest.raises(nats.errors.MaxPayloadError):
                await q.publish("src", [Message("big", b"x" * (2 * 1024 * 1024))])
            assert time.monotonic() - started < 1  # not retried until the deadline
            with pytest.raises(ValueError):
                await q.publish("no.dots", msgs("d", 1))
            with pytest.raises(ValueError):
                await q.publish("src", [Message("a\r\nNats-Expected-Stream: X", b"{}")])
        finally:
            await q.close()


async def test_legacy_events_are_expired_and_purged_like_the_others(tmp_path: Path) -> None:
    async with _upgraded(tmp_path) as q:
        await q.purge("int_b")
        assert await q.depth("int_b") == 0
        await asyncio.sleep(1.2)  # the held message's lease (1 s) has run out too
        assert await q.expire(max_age=0.5) == {"int_a": 5}
        assert await q.depths() == {}
        await q.subscribe("int_a", "src")
        assert await q.pull("int_a", 10, timeout=0.5) == []


async def test_what_a_killed_server_forgot_was_acknowledged_is_not_handed_out_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """nats-server writes a consumer's state at most ten times a second: killed right after
    two acknowledged batches, it hands (some of) them out again on restart, and another worker
    process, told of the acknowledgements as they were made, settles them instead of
    delivering them twice."""
    with nats_server(tmp_path / "nats") as server:
        settings = Settings(data_dir=tmp_path, queue_url=server.url, nats_ack_wait_seconds=1.0)
        worker, other = NatsQueue(settings), NatsQueue(settings)
        await worker.start()
        await other.start()
        try:
            await worker.subscribe("s", "src")
            assert await other.pull("s", 10, timeout=0.2) == []  # listening from here on
            await worker.publish("src", msgs("e", 20))
            delivered: list[str] = []
            for _ in range(2):  # the first writes the consumer's state, the second waits
                batch = await worker.pull("s", 10, timeout=2)
                await worker.ack("s", batch)
                delivered += [d.message_id for d in batch]
            assert sorted(delivered) == sorted(f"e-{i}" for i in range(20))
            await asyncio.sleep(0.02)  # the announcements reach the other process
            server.kill()
            server.start()
            caplog.set_level("INFO", logger="eventrelay.queue")
            again: list[str] = []
            deadline = time.monotonic() + 4  # past the restored deliveries' ack wait
            while time.monotonic() < deadline:
                got = await other.pull("s", 20, timeout=0.5)
                again += [d.message_id for d in got]
                await other.ack("s", got)
            assert again == []
            # The server did hand them out again: they were settled on sight.
            assert any("handed out again" in r.getMessage() for r in caplog.records)
        finally:
            await worker.close()
            await other.close()
