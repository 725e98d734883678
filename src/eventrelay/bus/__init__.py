"""Configuration-change notifications between the control plane and the data plane.

Embedded mode delivers them in-process. Scale-out mode also sends them to every other process
(PostgreSQL LISTEN/NOTIFY), so caches refresh within about a second without polling per event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("eventrelay.bus")


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # "integration" | "source" | "org"
    id: str


Listener = Callable[[Change], Awaitable[None]]


class ConfigBus:
    """In-process fan-out. Subclasses add cross-process transport."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def publish(self, change: Change) -> None:
        await self.deliver_local(change)

    async def deliver_local(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                await listener(change)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("config listener failed", extra={"change_kind": change.kind})

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
