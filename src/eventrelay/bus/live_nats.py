"""The live view's fan-out over NATS core subjects (scale-out); the design is in `live.py`."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from eventrelay.bus.live import OnEvents, OnWatch

log = logging.getLogger("eventrelay.live")


class NatsLiveFanout:
    def __init__(self, servers: list[str], subject_prefix: str) -> None:
        self._servers = servers
        self._base = f"{subject_prefix}-live"
        self._nc: Client | None = None
        self._subs: dict[str, Subscription] = {}
        self._on_events: OnEvents | None = None

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def start(self, on_watch: OnWatch, on_events: OnEvents) -> None:
        self._on_events = on_events

        async def watch(msg: Msg) -> None:
            on_watch(msg.data)

        async def error(exc: Exception) -> None:
            log.warning("live view: nats error", extra={"error_type": type(exc).__name__})

        self._nc = await nats.connect(
            servers=self._servers,
            name="eventrelay-live",
            no_echo=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            error_cb=error,
        )
        await self._nc.subscribe(f"{self._base}.watch", cb=watch)

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        self._subs.clear()
        if nc is not None:
            try:
                await nc.close()
            except Exception as exc:
                log.warning("live view: close failed", extra={"error_type": type(exc).__name__})

    async def announce(self, payload: bytes) -> None:
        if self.connected:
            assert self._nc is not None
            await self._nc.publish(f"{self._base}.watch", payload)

    async def publish(self, source_id: str, payload: bytes) -> None:
        if self.connected:
            assert self._nc is not None
            await self._nc.publish(f"{self._base}.events.{source_id}", payload)

    async def listen(self, source_id: str) -> None:
        if self._nc is None or source_id in self._subs:
            return
        on_events = self._on_events
        assert on_events is not None

        async def deliver(msg: Msg) -> None:
            on_events(source_id, msg.data)

        self._subs[source_id] = await self._nc.subscribe(
            f"{self._base}.events.{source_id}", cb=deliver
        )
        await self._nc.flush(timeout=2)  # subscribed before the lease goes out

    async def unlisten(self, source_id: str) -> None:
        sub = self._subs.pop(source_id, None)
        if sub is not None and self.connected:
            await sub.unsubscribe()
