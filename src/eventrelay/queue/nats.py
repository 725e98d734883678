"""NATS JetStream queue backend (scale-out): EVENTRELAY_QUEUE_URL=nats://host:4222.

One stream `<nats_stream>_LOG` (limits retention by age, file storage, configurable replicas)
holds a subject per log (a source), `<prefix>-log.<log>` (prefix `eventrelay.deliver` by
default): an accepted event is stored once however many integrations read it. Each
integration's stream is a durable pull consumer `er-<stream>` filtered on its log's subject,
shared by every worker process: JetStream hands each message to one of them and redelivers it
after `ack_wait` if that worker dies (at-least-once), and the consumer keeps the integration's
position, leases and retries apart from the other readers of the log. JetStream's dedup window
drops a re-published message with the same `Nats-Msg-Id` (`<log>:<messageId>`). Retries are
delayed negative acks; discards are `term`; deleting an integration deletes its consumer.

A worker expires (and counts) what it pulls past the max event age; `expire()` does the same
for what nobody pulls (paused integrations); the stream's own `max_age` (one hour longer) ends
the log. The work-queue stream of the release before is drained first (`nats_legacy.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections import deque
from collections.abc import Collection, Sequence

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

from eventrelay.queue.base import Delivery, Message
from eventrelay.queue.nats_acked import RecentlyAcked
from eventrelay.queue.nats_legacy import LegacyDrain
from eventrelay.queue.nats_msgs import (
    SKIP_HEADER,
    NatsDelivery,
    durable,
    settle,
    skips,
    terminate_older,
    token,
)
from eventrelay.queue.nats_publish import (
    Outgoing,
    Publisher,
    header_line,
    publish_until_stored,
)
from eventrelay.settings import Settings

log = logging.getLogger("eventrelay.queue")

PUBLISH_TIMEOUT = 10.0
RECONNECT_WAIT = 0.5  # between attempts to reach a server again
# After a reconnect, pulls wait this long: a restarted server hands out again what it forgot was
# acknowledged, and the other workers (reconnecting up to RECONNECT_WAIT later) announce what
# they acknowledged meanwhile first (nats_acked.py).
RECONNECT_GRACE = 2 * RECONNECT_WAIT
# This process's own announcements, sent again after a reconnect (the last ones may have gone
# down with the server).
_REANNOUNCE_SECONDS = 5.0
# Retention beyond the delivery max age: the worker expires (and counts) events first.
_AGE_MARGIN = 3600.0


class NatsQueue:
    def __init__(self, settings: Settings) -> None:
        assert settings.queue_url
        self._servers = [s.strip() for s in settings.queue_url.split(",") if s.strip()]
        self._stream_name = settings.nats_stream + "_LOG"
        self._prefix = settings.nats_subject_prefix + "-log."
        self._replicas = settings.nats_replicas
        self._storage = StorageType.FILE if settings.nats_storage == "file" else StorageType.MEMORY
        self._ack_wait = settings.nats_ack_wait_seconds
        self.lease_seconds: float | None = self._ack_wait
        self._dedup_window = settings.nats_dedup_window_seconds
        self._max_age = settings.max_event_age_seconds + _AGE_MARGIN
        self._publish_deadline = settings.nats_publish_deadline_seconds
        self._legacy = LegacyDrain(
            settings.nats_stream, settings.nats_subject_prefix + ".", self._ack_wait
        )
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        # What the deployment's workers acknowledged lately (nats_acked.py), announced on
        # `<prefix>-acked.<consumer>`; listened to from this process's first pull.
        self._acked = RecentlyAcked()
        self._acked_prefix = settings.nats_subject_prefix + "-acked."
        self._acked_sub: Subscription | None = None
        self._announced: deque[tuple[float, str, bytes]] = deque(maxlen=1024)
        self._pull_from = 0.0  # monotonic time pulls may resume after a reconnect
        self._publisher: Publisher | None = None
        self._logs: dict[str, str] = {}  # stream -> the log it reads
        self._subs: dict[str, JetStreamContext.PullSubscription] = {}
        self._sub_lock = asyncio.Lock()
        self._subscribed = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._nc = await nats.connect(
            servers=self._servers,
            name="eventrelay",
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT,
            connect_timeout=5,
            allow_reconnect=True,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        self._js = self._nc.jetstream(timeout=PUBLISH_TIMEOUT)
        self._publisher = Publisher(self._nc)
        await self._ensure_stream()
        await self._legacy.start(self._js)

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        self._subs.clear()
        self._acked_sub = None
        self._legacy.close()
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
        self._pull_from = time.monotonic() + RECONNECT_GRACE
        await self._reannounce()

    def _jsx(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("queue is not started")
        return self._js

    async def _ensure_stream(self) -> None:
        config = StreamConfig(
            name=self._stream_name,
            subjects=[self._prefix + ">"],
            retention=RetentionPolicy.LIMITS,  # an archive too: read by many, kept by age
            discard=DiscardPolicy.OLD,
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

    def _consumer_config(
        self, stream: str, log_name: str, since: float | None = None
    ) -> ConsumerConfig:
        start = None
        if since is not None:
            start = datetime.datetime.fromtimestamp(since, tz=datetime.UTC)
        return ConsumerConfig(
            durable_name=durable(stream),
            filter_subject=self._prefix + log_name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL if start is None else DeliverPolicy.BY_START_TIME,
            opt_start_time=start,
            ack_wait=self._ack_wait,
            max_deliver=-1,
            max_ack_pending=50_000,
        )

    # --- subscribe -------------------------------------------------------------------------

    async def subscribe(self, stream: str, log: str, since: float | None = None) -> None:
        if self._logs.get(stream) == log and stream in self._subs:
            return
        js = self._jsx()
        async with self._sub_lock:
            if self._logs.get(stream) == log and stream in self._subs:
                return
            try:
                # An existing consumer keeps its position (whatever `since` says now); a
                # changed ack wait applies to it.
                info = await js.consumer_info(self._stream_name, durable(stream))
                if abs((info.config.ack_wait or 0) - self._ack_wait) > 1e-3:
                    info.config.ack_wait = self._ack_wait
                    await js.add_consumer(self._stream_name, info.config)
            except NotFoundError:
                config = self._consumer_config(token(stream), token(log), since)
                with contextlib.suppress(BadRequestError):  # made by another process meanwhile
                    await js.add_consumer(self._stream_name, config)
            await self._bind(stream, log)

    async def _bind(self, stream: str, log: str) -> JetStreamContext.PullSubscription:
        sub = await self._jsx().pull_subscribe_bind(
            durable=durable(stream), stream=self._stream_name
        )
        self._subs[stream], self._logs[stream] = sub, log
        self._subscribed.set()  # wakes pulls that came first
        self._subscribed = asyncio.Event()
        return sub

    async def _subscription(self, stream: str) -> JetStreamContext.PullSubscription | None:
        """This process's subscription, or one bound to the stream's existing consumer (a
        process that did not subscribe, after a restart); None when there is none."""
        sub = self._subs.get(stream)
        if sub is not None:
            return sub
        async with self._sub_lock:
            if stream in self._subs:
                return self._subs[stream]
            try:
                info = await self._jsx().consumer_info(self._stream_name, durable(stream))
            except NotFoundError:
                return None
            return await self._bind(stream, (info.config.filter_subject or "")[len(self._prefix) :])

    # --- publish ---------------------------------------------------------------------------

    async def publish(
        self, log: str, messages: Sequence[Message], skip: Collection[str] = ()
    ) -> None:
        if self._publisher is None:
            raise RuntimeError("queue is not started")
        if not messages:
            return
        subject = self._prefix + token(log)
        extra = header_line(SKIP_HEADER, ",".join(map(token, skip))) if skip else b""
        id_prefix = log + ":"
        outgoing = [Outgoing(subject, m.data, id_prefix + m.id, extra) for m in messages]
        # Durable once JetStream acknowledged every message (stored, and replicated when the
        # stream has replicas); retried through a leader election or a lost server until the
        # deadline (queue/nats_publish.py).
        await publish_until_stored(self._publisher, outgoing, self._publish_deadline)

    # --- consume ---------------------------------------------------------------------------

    async def pull(
        self, stream: str, max_messages: int, timeout: float, fill: float = 0.0
    ) -> list[Delivery]:
        legacy = await self._legacy.pull(stream, max_messages)
        if legacy:
            return [NatsDelivery(m, stream + ":", on_log=False) for m in legacy]
        if self._acked_sub is None:
            await self._listen_acked()
        deadline = time.monotonic() + timeout
        sub = await self._subscription(stream)
        while sub is None:  # not read yet: wait for a subscribe in this process
            subscribed = self._subscribed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(subscribed.wait(), deadline - time.monotonic())
            if (sub := self._subs.get(stream)) is None and time.monotonic() >= deadline:
                return []
        id_prefix = self._logs.get(stream, "") + ":"
        got: list[NatsDelivery] = []
        again = 0
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
                for delivery in got:
                    await delivery.msg.in_progress()
                renewed = time.monotonic()
                continue
            if not self._may_pull():
                # Reconnecting, or just reconnected: a pull request sent now would be handed
                # what the others have not yet announced (RECONNECT_GRACE).
                await asyncio.sleep(min(remaining, 0.05))
                continue
            with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                for msg in await sub.fetch(batch=max_messages - len(got), timeout=remaining):
                    if skips(msg, stream):
                        await msg.ack()  # not this stream's: settled unseen
                        continue
                    delivery = NatsDelivery(msg, id_prefix)
                    if self._acked.seen(delivery.consumer, delivery.seq):
                        # Acknowledged before, handed out again by a restarted server that
                        # lost its last moments (nats_acked.py): settled, not sent twice.
                        await msg.ack()
                        again += 1
                    else:
                        got.append(delivery)
            if got:
                if fill <= 0:
                    break
                if fill_deadline is None:
                    fill_deadline = time.monotonic() + fill
                    renewed = time.monotonic()
        if again:
            log.info(
                "events acknowledged before were handed out again; acknowledged, not redelivered",
                extra={"stream": stream, "count": again},
            )
        return [*got]

    async def ack(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await settle(self._nc, deliveries, "ack", announce=self._announce)

    async def extend(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await settle(self._nc, deliveries, "progress")  # resets JetStream's ack_wait timer

    async def retry(self, stream: str, deliveries: Sequence[Delivery], delay: float) -> None:
        await settle(self._nc, deliveries, "nak", max(0.0, delay))

    async def release(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await settle(self._nc, deliveries, "nak")  # redelivered at once, not after ack_wait

    async def terminate(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await settle(self._nc, deliveries, "term", announce=self._announce)

    # --- what was acknowledged lately (nats_acked.py) --------------------------------------

    def _may_pull(self) -> bool:
        nc = self._nc
        return nc is not None and nc.is_connected and time.monotonic() >= self._pull_from

    async def _listen_acked(self) -> None:
        if self._nc is None:
            raise RuntimeError("queue is not started")
        self._acked_sub = await self._nc.subscribe(self._acked_prefix + ">", cb=self._on_acked)

    async def _on_acked(self, msg: Msg) -> None:
        self._acked.receive(msg.subject[len(self._acked_prefix) :], msg.data)

    async def _announce(self, deliveries: Sequence[Delivery]) -> None:
        if self._nc is None or self._acked_sub is None:
            return  # nobody here reads (an expiry sweep in an API process)
        by_consumer: dict[str, list[int]] = {}
        for delivery in deliveries:
            if isinstance(delivery, NatsDelivery) and delivery.seq:
                by_consumer.setdefault(delivery.consumer, []).append(delivery.seq)
        for consumer, seqs in by_consumer.items():
            recorded, wire = self._acked.pack(seqs)
            self._acked.add(consumer, recorded)
            # Sent with the acknowledgements (settle flushes both); sent again after a
            # reconnect in case they went down with the server.
            await self._nc.publish(self._acked_prefix + consumer, wire)
            self._announced.append((time.monotonic(), consumer, wire))

    async def _reannounce(self) -> None:
        if self._nc is None:
            return
        since = time.monotonic() - _REANNOUNCE_SECONDS
        with contextlib.suppress(Exception):
            for at, consumer, wire in list(self._announced):
                if at >= since:
                    await self._nc.publish(self._acked_prefix + consumer, wire)

    # --- maintenance -----------------------------------------------------------------------

    async def purge(self, stream: str) -> None:
        sub = self._subs.pop(stream, None)
        self._logs.pop(stream, None)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        with contextlib.suppress(NotFoundError):
            await self._jsx().delete_consumer(self._stream_name, durable(stream))
        await self._legacy.purge(stream)

    async def _consumers(self) -> list[ConsumerInfo]:
        js, found, offset = self._jsx(), [], 0
        while True:
            page = await js.consumers_info(self._stream_name, offset=offset or None)
            found += page
            offset += len(page)
            if len(page) < 256:  # the API's page size
                return found

    @staticmethod
    def _unsettled(info: ConsumerInfo) -> int:
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def depth(self, stream: str) -> int:
        try:
            info = await self._jsx().consumer_info(self._stream_name, durable(stream))
            count = self._unsettled(info)
        except NotFoundError:
            count = 0
        return count + (await self._legacy.depths()).get(stream, 0)

    async def depths(self) -> dict[str, int]:
        counts = await self._legacy.depths()
        for info in await self._consumers():
            if info.name.startswith("er-") and (n := self._unsettled(info)):
                stream = info.name.removeprefix("er-")
                counts[stream] = counts.get(stream, 0) + n
        return counts

    async def expire(self, max_age: float) -> dict[str, int]:
        """Terminate and count messages past the max age that no worker has expired (those of
        paused or errored integrations), before the stream's own `max_age` would remove them
        uncounted. Per consumer, the first message after its ack floor on its subject is
        peeked first (on a shared log the subject's oldest says nothing about one reader), so
        a queue of young messages is never touched; messages a worker holds are not handed
        out here."""
        js = self._jsx()
        cutoff = time.time() - max_age
        counts: dict[str, int] = {}
        for info in await self._consumers():
            subject = info.config.filter_subject or ""
            if not info.name.startswith("er-") or not self._unsettled(info):
                continue
            with contextlib.suppress(NotFoundError):
                floor = info.ack_floor.stream_seq if info.ack_floor else 0
                first = await js.get_msg(
                    self._stream_name, seq=floor + 1, subject=subject, next=True
                )
                if first.time is None or first.time.timestamp() >= cutoff:
                    continue
                stream = info.name.removeprefix("er-")
                sub = self._subs.get(stream) or await self._bind(
                    stream, subject[len(self._prefix) :]
                )
                if count := await terminate_older(self._nc, sub, stream, cutoff):
                    counts[stream] = count
        for stream in await self._legacy.old_streams(cutoff):
            sub = await self._legacy.subscription(stream)
            if count := await terminate_older(self._nc, sub, stream, cutoff):
                counts[stream] = counts.get(stream, 0) + count
        return counts
