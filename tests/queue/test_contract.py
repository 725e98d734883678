"""The queue contract every backend must pass (embedded SQLite, NATS JetStream)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from eventrelay.queue.base import Message
from eventrelay.queue.nats_msgs import NatsDelivery
from tests.queue.conftest import QueueFactory


def msgs(prefix: str, n: int) -> list[Message]:
    return [Message(f"{prefix}-{i}", f'{{"n":{i},"p":"{prefix}"}}'.encode()) for i in range(n)]


async def put(q, batches: dict[str, list[Message]]) -> None:
    """Publish to one log per stream, each read by the stream of the same name (the one-reader
    case; the fan-out cases below share a log)."""
    for stream, messages in batches.items():
        await q.subscribe(stream, stream)
        await q.publish(stream, messages)


async def drain(q, stream: str, expected: int, batch: int = 100, timeout: float = 5.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        got += await q.pull(stream, batch, timeout=0.5)
    return got


async def test_publish_pull_ack_in_order(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    before = time.time()
    await put(q, {"s1": msgs("a", 3)})
    got = await q.pull("s1", 10, timeout=2)
    assert [d.message_id for d in got] == ["a-0", "a-1", "a-2"]
    assert [d.data for d in got] == [m.data for m in msgs("a", 3)]
    assert all(d.attempts == 1 for d in got)
    assert all(before - 1 <= d.published_at <= time.time() + 1 for d in got)
    await q.ack("s1", got)
    assert await q.pull("s1", 10, timeout=0.2) == []


async def test_pull_times_out_empty(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await q.subscribe("empty", "empty")
    started = time.monotonic()
    assert await q.pull("empty", 10, timeout=0.3) == []
    assert time.monotonic() - started >= 0.25


async def test_pull_wakes_on_publish(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await q.subscribe("s", "s")
    waiter = asyncio.create_task(q.pull("s", 10, timeout=5))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await put(q, {"s": msgs("w", 1)})
    got = await waiter
    assert [d.message_id for d in got] == ["w-0"]
    assert time.monotonic() - started < 2


async def test_fill_waits_for_a_fuller_batch(queue_factory: QueueFactory) -> None:
    q = await queue_factory()

    async def trickle() -> None:
        for i in range(5):
            await put(q, {"s": [Message(f"t{i}", b"{}")]})
            await asyncio.sleep(0.05)

    task = asyncio.create_task(trickle())
    got = await q.pull("s", 5, timeout=2, fill=2)
    await task
    assert len(got) == 5


async def test_unsettled_messages_come_back_after_restart(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"s": msgs("r", 4)})
    got = await q.pull("s", 4, timeout=2)
    await q.ack("s", got[:2])
    q = await queue_factory()  # crash/restart: the last two were never settled
    again = await drain(q, "s", 2)
    assert sorted(d.message_id for d in again) == ["r-2", "r-3"]


async def test_retry_after_delay(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"s": msgs("d", 1)})
    [first] = await q.pull("s", 1, timeout=2)
    await q.retry("s", [first], delay=0.5)
    assert await q.pull("s", 1, timeout=0.2) == []
    [second] = await q.pull("s", 1, timeout=3)
    assert second.message_id == "d-0"
    assert second.attempts == 2
    assert second.data == first.data
    assert abs(second.published_at - first.published_at) < 0.01
    await q.ack("s", [second])
    assert await q.pull("s", 1, timeout=0.3) == []


async def test_terminate_never_redelivers(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"s": msgs("x", 2)})
    got = await q.pull("s", 2, timeout=2)
    await q.terminate("s", got)
    q = await queue_factory()
    assert await q.pull("s", 2, timeout=0.3) == []


async def test_purge_drops_one_stream_only(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"a": msgs("a", 3), "b": msgs("b", 2)})
    await q.purge("a")
    assert await q.pull("a", 10, timeout=0.3) == []
    assert [d.message_id for d in await drain(q, "b", 2)] == ["b-0", "b-1"]
    assert await q.depth("a") == 0


async def test_dedup_by_message_id(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"s": msgs("dup", 2)})
    await put(q, {"s": msgs("dup", 3)})
    got = await drain(q, "s", 3, timeout=1.5)
    assert sorted(d.message_id for d in got) == ["dup-0", "dup-1", "dup-2"]


async def test_streams_are_isolated_and_depth_counts(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"a": msgs("a", 5), "b": msgs("b", 1)})
    assert await q.depth("a") == 5
    assert await q.depth("b") == 1
    assert {d.message_id for d in await q.pull("b", 10, timeout=1)} == {"b-0"}


async def test_large_batches_exactly_once(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"s": msgs("big", 2500)})
    seen: list[str] = []
    while len(seen) < 2500:
        got = await q.pull("s", 100, timeout=2)
        assert got, f"stalled at {len(seen)}"
        seen += [d.message_id for d in got]
        await q.ack("s", got)
    assert len(seen) == len(set(seen)) == 2500


async def test_concurrent_pullers_share_without_duplicates(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"s": msgs("c", 600)})

    async def consumer() -> list[str]:
        mine: list[str] = []
        while True:
            got = await q.pull("s", 50, timeout=0.5)
            if not got:
                return mine
            mine += [d.message_id for d in got]
            await q.ack("s", got)

    results = await asyncio.gather(*(consumer() for _ in range(4)))
    everything = [m for r in results for m in r]
    assert len(everything) == len(set(everything)) == 600


async def test_expire_drops_and_counts_old_messages(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"s": [Message("old", b"{}")], "t": [Message("o2", b"{}")]})
    await asyncio.sleep(0.6)
    await put(q, {"s": [Message("new", b"{}")]})
    assert await q.expire(max_age=0.4) == {"s": 1, "t": 1}
    [left] = await q.pull("s", 10, timeout=1)
    assert left.message_id == "new"
    assert await q.pull("t", 10, timeout=0.3) == []


async def test_expire_keeps_young_messages(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"s": msgs("y", 2)})
    await q.expire(max_age=3600)
    assert len(await drain(q, "s", 2)) == 2


async def test_extended_messages_stay_with_their_puller(queue_factory: QueueFactory) -> None:
    """A slow batch renewed with `extend` is not handed to another puller meanwhile (the NATS
    fixture's lease is 1 s; this holds the messages for 2.5 s)."""
    q = await queue_factory()
    await put(q, {"s": msgs("l", 3)})
    held = await q.pull("s", 3, timeout=2)
    assert len(held) == 3
    deadline = asyncio.get_running_loop().time() + 2.5
    while asyncio.get_running_loop().time() < deadline:
        await q.extend("s", held)
        assert await q.pull("s", 3, timeout=0.3) == []
    await q.ack("s", held)
    assert await q.pull("s", 3, timeout=0.3) == []


async def test_a_released_batch_is_handed_out_again_at_once(queue_factory: QueueFactory) -> None:
    """A worker stopped mid-batch gives its events back; only the unsettled ones return, well
    before the 1 s lease would have run out."""
    q = await queue_factory()
    await put(q, {"s": msgs("rel", 3)})
    held = await q.pull("s", 3, timeout=2)
    await q.ack("s", held[:1])
    await q.release("s", held)
    again = await q.pull("s", 3, timeout=0.5)
    assert sorted(d.message_id for d in again) == ["rel-1", "rel-2"]
    assert all(d.attempts == 2 for d in again)
    await q.ack("s", again)
    assert await q.pull("s", 3, timeout=1.5) == []


async def test_a_cancelled_pull_loses_nothing(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"s": msgs("cp", 2)})
    waiter = asyncio.create_task(q.pull("s", 10, timeout=5, fill=5))  # waits for a fuller batch
    await asyncio.sleep(0.3)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    got = await drain(q, "s", 2)
    assert sorted(d.message_id for d in got) == ["cp-0", "cp-1"]


async def test_a_batch_filling_longer_than_the_lease_stays_leased(
    queue_factory: QueueFactory,
) -> None:
    """What a pull has taken stays reserved while it waits for a fuller batch (a batched
    webhook waits up to its interval, which may exceed the lease): not handed out again."""
    q = await queue_factory()  # a 1 s lease
    await put(q, {"s": msgs("fill", 1)})

    async def more_later() -> None:
        await asyncio.sleep(1.5)
        await put(q, {"s": msgs("late", 1)})

    later = asyncio.create_task(more_later())
    got = await q.pull("s", 10, timeout=2, fill=2.5)
    await later
    assert sorted(d.message_id for d in got) == ["fill-0", "late-0"]
    assert [d.attempts for d in got] == [1, 1]
    await q.ack("s", got)
    assert await q.pull("s", 10, timeout=1.5) == []


async def test_an_expired_lease_hands_the_batch_out_again(queue_factory: QueueFactory) -> None:
    """A holder that neither settles nor renews (hung, or lost the batch) loses it after the
    lease, as with JetStream's ack wait: nothing stays reserved forever."""
    q = await queue_factory()
    await put(q, {"s": msgs("lease", 2)})
    abandoned = await q.pull("s", 2, timeout=2)
    assert len(abandoned) == 2
    # Under load a JetStream pull can time out on the client just as a redelivery arrives:
    # JetStream counts one more delivery and hands that event out again after another ack
    # wait, while the other may come round twice meanwhile (at-least-once). Hence sets.
    again: list = []
    deadline = time.monotonic() + 8
    while {d.message_id for d in again} != {"lease-0", "lease-1"}:
        assert time.monotonic() < deadline, [d.message_id for d in again]
        again += await q.pull("s", 2, timeout=0.5)
    for d in again:
        if isinstance(d, NatsDelivery):
            # nats-server 2.9 now and then reports a redelivery's count as 1 when two leases run
            # out together (its own count, seen as `$JS.ACK.<stream>.er-s.1.2.4.<ns>.0`:
            # delivered 1, consumer sequence 4 of 2 messages); its consumer sequence tells.
            assert int(d.msg.reply.split(".")[6]) > 2
        else:
            assert d.attempts >= 2
    await q.ack("s", again)
    assert await q.pull("s", 2, timeout=1.5) == []


async def test_expire_counts_abandoned_leases(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"s": msgs("gone", 2)})
    assert len(await q.pull("s", 2, timeout=2)) == 2  # then its holder goes away
    await asyncio.sleep(1.3)  # past the 1 s lease
    assert await q.expire(max_age=0.5) == {"s": 2}
    assert await q.pull("s", 2, timeout=1.5) == []


async def test_expire_counts_what_was_read_but_not_handed_out(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"s": msgs("rest", 5)})
    first = await q.pull("s", 2, timeout=2)
    await q.ack("s", first)
    await asyncio.sleep(0.6)
    assert await q.expire(max_age=0.4) == {"s": 3}
    assert await q.pull("s", 5, timeout=1.5) == []
    assert await q.depth("s") == 0


async def test_expire_leaves_a_renewed_batch_to_its_holder(queue_factory: QueueFactory) -> None:
    """The holder of a live lease expires (and counts) its events itself. (A 10 s lease: a
    loaded machine must not let it run out while the expiry looks.)"""
    q = await queue_factory(lease=10.0)
    await put(q, {"s": msgs("kept", 1)})
    held = await q.pull("s", 1, timeout=2)
    await asyncio.sleep(0.6)
    await q.extend("s", held)
    assert await q.expire(max_age=0.4) == {}
    await q.terminate("s", held)
    assert await q.pull("s", 1, timeout=1.5) == []


async def test_depths_per_stream(queue_factory: QueueFactory) -> None:
    q = await queue_factory()
    await put(q, {"a": msgs("a", 4), "b": msgs("b", 1)})
    got = await q.pull("a", 1, timeout=2)
    await q.ack("a", got)
    # JetStream applies an ack asynchronously: the count follows within moments
    deadline = time.monotonic() + 5
    while (depths := await q.depths()) != {"a": 3, "b": 1} and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert depths == {"a": 3, "b": 1}
