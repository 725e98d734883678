"""Draining the work-queue stream of the release before the log (issue 12).

That release kept a JetStream stream `<nats_stream>` with work-queue retention and a subject
`<prefix>.<integration id>` per integration, read by a durable consumer `er-<integration id>`.
After an upgrade it may still hold queued events. It is no longer created; if it exists at
start, the integrations with messages there are remembered and their `pull` reads the legacy
subject first, through the old consumer, so those events come out on the integration's stream
exactly as before (the deliveries are bound to their messages: ack, retry, terminate work on
them unchanged). Once a legacy subject is empty it is not looked at again.
"""

from __future__ import annotations

import contextlib
import time

import nats.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

# A legacy subject whose messages are all in flight or waiting for a retry is looked at again
# after this long, so pulls meanwhile go straight to the log.
_IDLE_BACKOFF = 1.0


class LegacyDrain:
    def __init__(self, stream: str, prefix: str, ack_wait: float) -> None:
        self._stream = stream
        self._prefix = prefix  # "<nats_subject_prefix>."
        self._ack_wait = ack_wait
        self._js: JetStreamContext | None = None
        self._pending: dict[str, int] = {}  # integration id -> messages left at last look
        self._idle_until: dict[str, float] = {}
        self._subs: dict[str, JetStreamContext.PullSubscription] = {}

    async def start(self, js: JetStreamContext) -> None:
        self._js = js
        with contextlib.suppress(NotFoundError):
            self._pending = await self._counts()

    def close(self) -> None:
        self._subs.clear()

    async def _counts(self) -> dict[str, int]:
        assert self._js is not None
        info = await self._js.stream_info(self._stream, subjects_filter=self._prefix + ">")
        return {
            subject.removeprefix(self._prefix): int(n)
            for subject, n in (info.state.subjects or {}).items()
            if n
        }

    async def subscription(self, stream: str) -> JetStreamContext.PullSubscription:
        sub = self._subs.get(stream)
        if sub is None:
            assert self._js is not None
            durable = "er-" + stream
            config = ConsumerConfig(
                durable_name=durable,
                filter_subject=self._prefix + stream,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self._ack_wait,
                max_deliver=-1,
                max_ack_pending=50_000,
            )
            with contextlib.suppress(BadRequestError):  # it exists (the old release made it)
                await self._js.add_consumer(self._stream, config)
            sub = await self._js.pull_subscribe_bind(durable=durable, stream=self._stream)
            self._subs[stream] = sub
        return sub

    async def pull(self, stream: str, max_messages: int) -> list[Msg]:
        """What the legacy subject has for `stream` now ([] without waiting when none)."""
        if stream not in self._pending or time.monotonic() < self._idle_until.get(stream, 0):
            return []
        try:
            sub = await self.subscription(stream)
            with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                got = await sub.fetch(batch=max_messages, timeout=0.2)
                if got:
                    return got
            left = (await self._counts()).get(stream, 0)
        except NotFoundError:  # the operator deleted the old stream
            self._pending.clear()
            self._subs.clear()
            return []
        if left:
            self._pending[stream] = left  # all in flight or delayed: look again later
            self._idle_until[stream] = time.monotonic() + _IDLE_BACKOFF
        else:
            await self._forget(stream)
        return []

    async def _forget(self, stream: str) -> None:
        self._pending.pop(stream, None)
        self._idle_until.pop(stream, None)
        sub = self._subs.pop(stream, None)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        assert self._js is not None
        with contextlib.suppress(NotFoundError):
            await self._js.delete_consumer(self._stream, "er-" + stream)

    async def depths(self) -> dict[str, int]:
        if not self._pending:
            return {}
        with contextlib.suppress(NotFoundError):
            counts = await self._counts()
            self._pending = {s: counts[s] for s in self._pending if counts.get(s)}
            return dict(self._pending)
        self._pending.clear()
        return {}

    async def purge(self, stream: str) -> None:
        if stream not in self._pending:
            return
        await self._forget(stream)
        assert self._js is not None
        with contextlib.suppress(NotFoundError):
            await self._js.purge_stream(self._stream, subject=self._prefix + stream)

    async def old_streams(self, cutoff: float) -> list[str]:
        """Streams whose legacy subject's oldest message is older than `cutoff`."""
        assert self._js is not None
        old: list[str] = []
        for stream in list(self._pending):
            with contextlib.suppress(NotFoundError):
                oldest = await self._js.get_msg(
                    self._stream, seq=1, subject=self._prefix + stream, next=True
                )
                if oldest.time is not None and oldest.time.timestamp() < cutoff:
                    old.append(stream)
        return old
