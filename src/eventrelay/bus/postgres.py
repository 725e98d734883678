"""Configuration changes across processes through PostgreSQL LISTEN/NOTIFY (scale-out).

Every process listens on one channel; a change made by any process (an admin request, a worker
putting an integration in error) is announced there, so directories and supervisors everywhere
refresh within moments. A process ignores its own announcements (it already applied them). If
the listening connection drops, notifications may be lost: on reconnect the process does a full
refresh, and every process also refreshes every 30 s regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import asyncpg
import orjson

from eventrelay.bus import Change, ConfigBus
from eventrelay.tasks import stop_task

log = logging.getLogger("eventrelay.bus")
CHANNEL = "eventrelay_config"


class PostgresBus(ConfigBus):
    def __init__(self, dsn: str, application_name: str = "eventrelay") -> None:
        super().__init__()
        self._dsn = dsn
        self._application_name = application_name
        self._origin = uuid.uuid4().hex
        self._listener: asyncpg.Connection | None = None
        self._sender: asyncpg.Connection | None = None
        self._send_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="config-bus-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 10)

    async def close(self) -> None:
        await stop_task(self._task)
        for task in list(self._tasks):  # announcements still being applied
            await stop_task(task)
        for conn in (self._listener, self._sender):
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _listen(self) -> None:
        first = True
        while True:
            try:
                conn = await asyncpg.connect(
                    self._dsn, server_settings={"application_name": self._application_name}
                )
                await conn.add_listener(CHANNEL, self._on_notify)
                self._listener = conn
                self.connected.set()
                if not first:
                    # Notifications sent while we were away are lost: refresh everything.
                    await self.deliver_local(Change("all", ""))
                first = False
                await self._until_closed(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("config bus listener failed", extra={"error_type": type(exc).__name__})
            self.connected.clear()
            await asyncio.sleep(1.0)

    @staticmethod
    async def _until_closed(conn: asyncpg.Connection) -> None:
        closed = asyncio.Event()
        conn.add_termination_listener(lambda _conn: closed.set())
        await closed.wait()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            data = orjson.loads(payload)
            change = Change(str(data["k"]), str(data["i"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return  # not one of ours
        if data.get("o") == self._origin:
            return
        task = asyncio.create_task(self.deliver_local(change))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def publish(self, change: Change) -> None:
        await self.deliver_local(change)
        payload = orjson.dumps({"o": self._origin, "k": change.kind, "i": change.id}).decode()
        try:
            async with self._send_lock:
                if self._sender is None or self._sender.is_closed():
                    self._sender = await asyncpg.connect(self._dsn)
                await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        except Exception as exc:
            # Other processes still converge through their periodic refresh.
            log.warning("config change not announced", extra={"error_type": type(exc).__name__})
