"""The queue contract, fan-out cases: one log (a source) read by many streams (its
integrations). Each event is stored once and every stream reads it with its own position,
leases, retries and expiry; one stream stuck or deleted holds back no other."""

from __future__ import annotations

import asyncio
import time

from eventrelay.queue.base import Message
from tests.queue.conftest import QueueFactory
from tests.queue.test_contract import drain, msgs

READERS = ("r1", "r2", "r3")


async def subscribed(queue_factory: QueueFactory, lease: float = 1.0):  # type: ignore[no-untyped-def]
    q = await queue_factory(lease=lease)
    for stream in READERS:
        await q.subscribe(stream, "src")
    return q


async def settle_all(q, stream: str, expected: int) -> list[str]:  # type: ignore[no-untyped-def]
    got = await drain(q, stream, expected)
    await q.ack(stream, got)
    return [d.message_id for d in got]


async def wait_depths(q, expected: dict[str, int]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """JetStream applies acks asynchronously: the counts follow within moments."""
    deadline = time.monotonic() + 5
    while (depths := await q.depths()) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return depths


async def test_every_reader_gets_each_event_once(queue_factory: QueueFactory) -> None:
    q = await subscribed(queue_factory)
    await q.publish("src", msgs("f", 300))
    for stream in READERS:
        seen = await settle_all(q, stream, 300)
        assert sorted(seen) == sorted(m.id for m in msgs("f", 300)), stream
    for stream in READERS:
        assert await q.pull(stream, 10, timeout=0.3) == []


async def test_settling_in_one_stream_leaves_the_others(queue_factory: QueueFactory) -> None:
    q = await subscribed(queue_factory)
    await q.publish("src", msgs("iso", 4))
    first = await drain(q, "r1", 4)
    await q.ack("r1", first[:2])
    await q.terminate("r1", first[2:])
    [retried] = await q.pull("r2", 1, timeout=2)
    await q.retry("r2", [retried], delay=0.3)
    assert sorted(await settle_all(q, "r3", 4)) == ["iso-0", "iso-1", "iso-2", "iso-3"]
    again = await drain(q, "r2", 4, timeout=3)
    assert sorted(d.message_id for d in again) == ["iso-0", "iso-1", "iso-2", "iso-3"]
    assert {d.message_id: d.attempts for d in again}[retried.message_id] == 2
    await q.ack("r2", again)
    assert await wait_depths(q, {}) == {}


async def test_a_stuck_stream_holds_back_no_other(queue_factory: QueueFactory) -> None:
    """r1 never pulls (its integration is in error): r2 and r3 deliver everything, the
    depth of r1 alone grows, and a restart resumes each stream where it was."""
    q = await subscribed(queue_factory)
    await q.publish("src", msgs("a", 5))
    assert len(await settle_all(q, "r2", 5)) == 5
    await q.publish("src", msgs("b", 5))
    assert len(await settle_all(q, "r2", 5)) == 5
    assert len(await settle_all(q, "r3", 10)) == 10
    assert await wait_depths(q, {"r1": 10}) == {"r1": 10}
    q = await queue_factory()  # a restart
    for stream in READERS:
        await q.subscribe(stream, "src")
    assert await q.pull("r2", 10, timeout=0.3) == []
    assert sorted(await settle_all(q, "r1", 10)) == sorted(
        m.id for m in [*msgs("a", 5), *msgs("b", 5)]
    )


async def test_expiry_counts_per_stream(queue_factory: QueueFactory) -> None:
    q = await subscribed(queue_factory)
    await q.publish("src", msgs("old", 3))
    assert len(await settle_all(q, "r1", 3)) == 3
    await asyncio.sleep(0.6)
    await q.publish("src", msgs("new", 1))
    assert await q.expire(max_age=0.4) == {"r2": 3, "r3": 3}
    for stream in ("r2", "r3"):
        assert await settle_all(q, stream, 1) == ["new-0"]
    assert await settle_all(q, "r1", 1) == ["new-0"]


async def test_skipped_streams_are_never_handed_the_events(queue_factory: QueueFactory) -> None:
    """Events accepted while an integration was paused are not its to deliver."""
    q = await subscribed(queue_factory)
    await q.publish("src", msgs("p", 3), skip=("r2",))
    await q.publish("src", msgs("q", 2))
    assert len(await settle_all(q, "r1", 5)) == 5
    assert sorted(await settle_all(q, "r2", 2)) == ["q-0", "q-1"]
    assert await q.pull("r2", 10, timeout=0.3) == []


async def test_a_new_stream_starts_at_its_since(queue_factory: QueueFactory) -> None:
    q = await subscribed(queue_factory)
    await q.publish("src", msgs("before", 2))
    await asyncio.sleep(0.05)
    since = time.time()
    await asyncio.sleep(0.05)
    await q.publish("src", msgs("after", 2))
    await q.subscribe("late", "src", since=since)
    assert sorted(await settle_all(q, "late", 2)) == ["after-0", "after-1"]
    assert await q.pull("late", 10, timeout=0.3) == []
    assert len(await settle_all(q, "r1", 4)) == 4


async def test_purging_one_stream_leaves_the_log_to_the_others(
    queue_factory: QueueFactory,
) -> None:
    q = await subscribed(queue_factory)
    await q.publish("src", msgs("k", 3))
    await q.purge("r1")
    assert await q.depth("r1") == 0
    assert len(await settle_all(q, "r2", 3)) == 3
    assert len(await settle_all(q, "r3", 3)) == 3


async def test_logs_are_separate(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await q.subscribe("x", "one")
    await q.subscribe("y", "two")
    await q.publish("one", [Message("same-id", b'{"log":1}')])
    await q.publish("two", [Message("same-id", b'{"log":2}')])
    [x] = await drain(q, "x", 1)
    [y] = await drain(q, "y", 1)
    assert (x.data, y.data) == (b'{"log":1}', b'{"log":2}')
