"""NATS JetStream queue backend (scale-out): EVENTRELAY_QUEUE_URL=nats://host:4222.

One stream (file storage, configurable replicas) holds a subject per integration,
`<prefix>.<integration_id>` (prefix `eventrelay.deliver` by default), with work-queue retention: a message is removed once it is
acknowledged. Each integration has one durable pull consumer filtered on its subject, shared by
every worker process: JetStream hands each message to one of them and redelivers it after
`ack_wait` if that worker dies (at-least-once). JetStream's dedup window drops a re-published
message with the same `Nats-Msg-Id` (the event's messageId, per integration). Retries are
delayed negative acks; discards are `term`; deleting an integration purges its subject.

A worker expires (and counts) what it pulls past the max event age; `expire()` does the same
for what nobody pulls (paused integrations); the stream's own `max_age` (one hour longer) is
the backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

from eventrelay.queue.base import Delivery, Message
from eventrelay.queue.nats_publish import MSG_ID_HEADER, Outgoing, publish_until_stored
from eventrelay.settings import Settings

log = logging.getLogger("eventrelay.queue")

PUBLISH_TIMEOUT = 10.0
# Retention beyond the delivery max age: the worker expires (and counts) events first.
_AGE_MARGIN = 3600.0


class _Delivery:
    __slots__ = ("attempts", "data", "message_id", "msg", "published_at")

    def __init__(self, msg: Msg, stream: str) -> None:
        self.msg = msg
        self.data = msg.data
        header = (msg.headers or {}).get(MSG_ID_HEADER, "")
        self.message_id = header.removeprefix(f"{stream}:")
        self.published_at, self.attempts = _ack_metadata(msg)


def _ack_metadata(msg: Msg) -> tuple[float, int]:
    """(publish time, delivery count) from the JetStream ack subject, read directly: nats-py's
    `msg.metadata` builds datetimes and dataclasses per message, a measurable share of a
    worker's time at thousands of events per second. The subject is
    `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>`, or with domain and
    account hash after `$JS.ACK` (12 tokens)."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9:
        return int(tokens[7]) / 1e9, int(tokens[4])
    if len(tokens) >= 12:
        return int(tokens[9]) / 1e9, int(tokens[6])
    metadata = msg.metadata
    return metadata.timestamp.timestamp(), int(metadata.num_delivered)


def _durable(stream: str) -> str:
    return "er-" + stream


class NatsQueue:
    def __init__(self, settings: Settings) -> None:
        assert settings.queue_url
        self._servers = [s.strip() for s in settings.queue_url.split(",") if s.strip()]
        self._stream_name = settings.nats_stream
        self._prefix = settings.nats_subject_prefix + "."
        self._replicas = settings.nats_replicas
        self._storage = StorageType.FILE if settings.nats_storage == "file" else StorageType.MEMORY
        self._ack_wait = settings.nats_ack_wait_seconds
        self.lease_seconds: float | None = self._ack_wait
        self._dedup_window = settings.nats_dedup_window_seconds
        self._max_age = settings.max_event_age_seconds + _AGE_MARGIN
        self._publish_deadline = settings.nats_publish_deadline_seconds
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._subs: dict[str, JetStreamContext.PullSubscription] = {}
        self._sub_lock = asyncio.Lock()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._nc = await nats.connect(
            servers=self._servers,
            name="eventrelay",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            allow_reconnect=True,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        self._js = self._nc.jetstream(timeout=PUBLISH_TIMEOUT, publish_async_max_pending=20_000)
        await self._ensure_stream()

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        self._subs.clear()
        if nc is not None:
            # Acks already went out with a flush; pending pull requests need no draining.
            with contextlib.suppress(Exception):
                await nc.flush(timeout=2)
            with contextlib.suppress(Exception):
                await nc.close()

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats error", extra={"error_type": type(exc).__name__})

    async def _on_disconnected(self) -> None:
        log.warning("nats disconnected; reconnecting")

    async def _on_reconnected(self) -> None:
        log.warning("nats reconnected")

    def _jsx(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("queue is not started")
        return self._js

    async def _ensure_stream(self) -> None:
        config = StreamConfig(
            name=self._stream_name,
            subjects=[self._prefix + ">"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=self._storage,
            num_replicas=self._replicas,
            duplicate_window=self._dedup_window,
            max_age=self._max_age,
        )
        js = self._jsx()
        try:
            await js.add_stream(config)
        except BadRequestError:
            # It exists (possibly from another version of this config): bring it in line.
            await js.update_stream(config)

    def _subject(self, stream: str) -> str:
        return self._prefix + stream

    def _consumer_config(self, stream: str) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=_durable(stream),
            filter_subject=self._subject(stream),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait,
            max_deliver=-1,
            max_ack_pending=50_000,
        )

    async def _subscription(self, stream: str) -> JetStreamContext.PullSubscription:
        sub = self._subs.get(stream)
        if sub is not None:
            return sub
        async with self._sub_lock:
            sub = self._subs.get(stream)
            if sub is None:
                js = self._jsx()
                await js.add_consumer(self._stream_name, self._consumer_config(stream))
                sub = await js.pull_subscribe_bind(
                    durable=_durable(stream), stream=self._stream_name
                )
                self._subs[stream] = sub
            return sub

    # --- publish ---------------------------------------------------------------------------

    async def publish(self, batches: Mapping[str, Sequence[Message]]) -> None:
        if self._nc is None or self._js is None:
            raise RuntimeError("queue is not started")
        outgoing = [
            Outgoing(self._subject(stream), message.data, f"{stream}:{message.id}")
            for stream, messages in batches.items()
            for message in messages
        ]
        if outgoing:
            # Durable once JetStream acknowledged every message (stored, and replicated when
            # the stream has replicas); retried through a leader election or a lost server
            # until the deadline (queue/nats_publish.py).
            await publish_until_stored(self._nc, self._js, outgoing, self._publish_deadline)

    # --- consume ---------------------------------------------------------------------------

    async def pull(
        self, stream: str, max_messages: int, timeout: float, fill: float = 0.0
    ) -> list[Delivery]:
        sub = await self._subscription(stream)
        got: list[Msg] = []
        deadline = time.monotonic() + timeout
        fill_deadline: float | None = None
        # Messages already fetched are leased from the moment JetStream sent them: a fill wait
        # as long as the ack wait (a batched webhook waits up to batch_interval_ms) would let
        # JetStream hand them to another worker meanwhile, and both would deliver them. Renew
        # them every third of the ack wait while filling, as the worker does once it has them.
        renew_every = self._ack_wait / 3
        renewed = time.monotonic()
        while len(got) < max_messages:
            until = fill_deadline if got else deadline
            assert until is not None
            if got:
                until = min(until, renewed + renew_every)
            remaining = until - time.monotonic()
            if remaining <= 0.001:
                if fill_deadline is None or time.monotonic() >= fill_deadline - 0.001:
                    break
                for msg in got:
                    await msg.in_progress()
                renewed = time.monotonic()
                continue
            with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                got.extend(await sub.fetch(batch=max_messages - len(got), timeout=remaining))
            if got:
                if fill <= 0:
                    break
                if fill_deadline is None:
                    fill_deadline = time.monotonic() + fill
                    renewed = time.monotonic()
        return [_Delivery(m, stream) for m in got]

    async def _settle(self, deliveries: Sequence[Delivery], how: str, delay: float = 0.0) -> None:
        sent = False
        for delivery in deliveries:
            assert isinstance(delivery, _Delivery)
            msg = delivery.msg
            if msg.is_acked:
                continue  # settled already: a second answer would raise (release after ack)
            sent = True
            if how == "ack":
                await msg.ack()
            elif how == "progress":
                await msg.in_progress()
            elif how == "nak":
                await msg.nak(delay=delay)
            else:
                await msg.term()
        if self._nc is not None and sent:
            # Make sure the acknowledgements reached the server before reporting them done.
            await self._nc.flush()

    async def ack(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await self._settle(deliveries, "ack")

    async def extend(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await self._settle(deliveries, "progress")  # resets JetStream's ack_wait timer

    async def retry(self, stream: str, deliveries: Sequence[Delivery], delay: float) -> None:
        await self._settle(deliveries, "nak", max(0.0, delay))

    async def release(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await self._settle(deliveries, "nak")  # redelivered at once, not after ack_wait

    async def terminate(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await self._settle(deliveries, "term")

    # --- maintenance -----------------------------------------------------------------------

    async def purge(self, stream: str) -> None:
        js = self._jsx()
        sub = self._subs.pop(stream, None)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(self._stream_name, _durable(stream))
        await js.purge_stream(self._stream_name, subject=self._subject(stream))

    async def depth(self, stream: str) -> int:
        # Work-queue retention keeps exactly the unsettled messages, so the subject's count in
        # the stream is the depth, with no consumer needed (none is created by asking).
        subject = self._subject(stream)
        info = await self._jsx().stream_info(self._stream_name, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))

    async def depths(self) -> dict[str, int]:
        info = await self._jsx().stream_info(self._stream_name, subjects_filter=self._prefix + ">")
        return {
            subject.removeprefix(self._prefix): int(count)
            for subject, count in (info.state.subjects or {}).items()
            if count
        }

    async def expire(self, max_age: float) -> dict[str, int]:
        """Terminate and count messages past the max age that no worker has expired (those of
        paused or errored integrations), before the stream's own `max_age` would remove them
        uncounted. Each backlogged subject's oldest message is peeked first, so a queue of
        young messages is never touched; messages a worker holds are not handed out here."""
        js = self._jsx()
        cutoff = time.time() - max_age
        info = await js.stream_info(self._stream_name, subjects_filter=self._prefix + ">")
        counts: dict[str, int] = {}
        for subject, stored in (info.state.subjects or {}).items():
            if not stored:
                continue
            with contextlib.suppress(NotFoundError):
                oldest = await js.get_msg(self._stream_name, seq=1, subject=subject, next=True)
                if oldest.time is None or oldest.time.timestamp() >= cutoff:
                    continue
                stream = subject.removeprefix(self._prefix)
                count = await self._terminate_older(stream, cutoff)
                if count:
                    counts[stream] = count
        return counts

    async def _terminate_older(self, stream: str, cutoff: float) -> int:
        sub = await self._subscription(stream)
        count = 0
        while True:
            try:
                got = await sub.fetch(batch=200, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                return count
            deliveries = [_Delivery(m, stream) for m in got]
            old = [d for d in deliveries if d.published_at < cutoff]
            young = [d for d in deliveries if d.published_at >= cutoff]
            await self.terminate(stream, old)
            count += len(old)
            if young:
                # Not ours to deliver: straight back (their attempt count has grown by one).
                await self.retry(stream, young, 0.0)
                return count
