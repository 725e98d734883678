"""Configuration changes across processes sharing one SQLite database (an API process and a
worker process on one machine): a version counter in the database, bumped on every change and
polled once a second. A process skips the versions it wrote itself."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select, update

from eventrelay.bus import Change, ConfigBus
from eventrelay.store.db import Database
from eventrelay.store.tables import config_version
from eventrelay.tasks import stop_task

log = logging.getLogger("eventrelay.bus")
POLL_SECONDS = 1.0


class SqliteBus(ConfigBus):
    def __init__(self, db: Database) -> None:
        super().__init__()
        self._db = db
        self._seen = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._seen = await self._version()
        self._task = asyncio.create_task(self._poll(), name="config-bus-poll")

    async def close(self) -> None:
        await stop_task(self._task)

    async def _version(self) -> int:
        async with self._db.read() as conn:
            value = (await conn.execute(select(config_version.c.version))).scalar()
        return int(value or 0)

    async def publish(self, change: Change) -> None:
        await self.deliver_local(change)
        try:
            async with self._db.transaction() as conn:
                await conn.execute(
                    update(config_version).values(version=config_version.c.version + 1)
                )
                written = (await conn.execute(select(config_version.c.version))).scalar()
            if written == self._seen + 1:
                self._seen = int(written)  # nobody else changed anything meanwhile
        except Exception as exc:
            log.warning("config change not announced", extra={"error_type": type(exc).__name__})

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                current = await self._version()
            except Exception as exc:
                log.warning("config poll failed", extra={"error_type": type(exc).__name__})
                continue
            if current != self._seen:
                self._seen = current
                await self.deliver_local(Change("all", ""))
