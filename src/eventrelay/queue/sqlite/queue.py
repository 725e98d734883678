"""SqliteQueue: the Queue contract on one SQLite file (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from eventrelay.queue.base import Delivery, Message
from eventrelay.queue.sqlite import log_schema, schema
from eventrelay.queue.sqlite.appender import Appender
from eventrelay.queue.sqlite.consumer import Item, StreamState
from eventrelay.queue.sqlite.dedup import DedupWindow
from eventrelay.queue.sqlite.expiry import depths_of, expire
from eventrelay.queue.sqlite.lock import take_lock
from eventrelay.queue.sqlite.settling import Writes, moved_floor, settle
from eventrelay.queue.sqlite.wake import WakeSender, listen
from eventrelay.queue.sqlite.writer import Writer

_CHUNKS_PER_READ = 16
# How often the consumer drops log chunks every reader is past (when any floor moved).
_CLEANUP_SECONDS = 1.0


class SqliteQueue:
    def __init__(
        self,
        path: Path,
        synchronous: str = "full",
        dedup_window: float = 120.0,
        dedup_capacity: int = 200_000,
        consumer: bool = True,
        lease_seconds: float = 60.0,
        holder: Mapping[str, Any] | None = None,
        retention_seconds: float = 0.0,
    ) -> None:
        self._path = path
        # A consumer takes the lock file and may pull; a publisher-only instance (an API process
        # next to a separate worker process) only appends.
        self._consumer = consumer
        self._synchronous = synchronous
        # A pulled batch not settled, renewed (extend) or released within this time is handed
        # out again, as JetStream does after its ack wait.
        self.lease_seconds: float | None = lease_seconds
        self._lease = lease_seconds
        self._dedup = DedupWindow(dedup_window, dedup_capacity)
        self._streams: dict[str, StreamState] = {}
        self._writer: Writer | None = None
        self._appender: Appender | None = None
        self._lock_fd: int | None = None
        self._holder = dict(holder or {})  # who we are, written into the consumer's lock
        self._wake_path = path.with_suffix(".wake")
        self._wake_out: WakeSender | None = None
        self._wake_in: asyncio.DatagramTransport | None = None
        # Log chunks every reader is past are kept this long (an archive), then dropped.
        self._retention = retention_seconds
        self._cleanup: asyncio.Task[None] | None = None
        self._floors_moved = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if self._consumer:
            self._lock_fd = take_lock(self._path, self._holder)
        writer = Writer(self._path, self._synchronous, asyncio.get_running_loop())
        writer.start()
        await asyncio.to_thread(writer.ready.wait)
        if writer.error is not None:
            raise writer.error
        self._writer = writer
        self._appender = Appender(writer, self._stored)
        os.chmod(self._path, 0o600)
        if self._consumer:
            self._wake_in = await listen(self._wake_path, self._on_wake)
            self._cleanup = asyncio.create_task(self._drop_read(), name="queue-log-cleanup")
        else:
            self._wake_out = WakeSender(self._wake_path)

    async def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cleanup
            self._cleanup = None
        if self._wake_in is not None:
            self._wake_in.close()
            self._wake_in = None
            with contextlib.suppress(FileNotFoundError):
                self._wake_path.unlink()
        if self._wake_out is not None:
            self._wake_out.close()
            self._wake_out = None
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
            self._writer = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _on_wake(self, logs: list[str]) -> None:
        wanted = set(logs)
        for state in self._streams.values():
            if state.log in wanted or state.log is None:
                state.wakeup.set()

    def _w(self) -> Writer:
        if self._writer is None:
            raise RuntimeError("queue is not started")
        return self._writer

    def _stream(self, name: str) -> StreamState:
        state = self._streams.get(name)
        if state is None:
            state = self._streams[name] = StreamState(name)
        return state

    # --- publish ---------------------------------------------------------------------------

    async def subscribe(self, stream: str, log: str, since: float | None = None) -> None:
        await self._w().submit(lambda conn: log_schema.subscribe(conn, stream, log, since))
        if self._consumer:
            self._stream(stream).wakeup.set()

    async def publish(
        self, log: str, messages: Sequence[Message], skip: Collection[str] = ()
    ) -> None:
        now = time.time()
        fresh = self._dedup.fresh(log, messages, now)
        if not fresh:
            return
        if self._appender is None:
            raise RuntimeError("queue is not started")
        await self._appender.append(log, fresh, skip)
        self._dedup.remember(log, fresh, now)

    def _stored(self, logs: list[str]) -> None:
        """Appended to these logs (one call per group of publishes): wake their readers."""
        if self._consumer:
            self._on_wake(logs)
        if self._wake_out is not None:
            self._wake_out.send(logs)

    # --- consume ---------------------------------------------------------------------------

    async def _take(self, stream: str, state: StreamState, wanted: int) -> list[Item]:
        async with state.lock:
            state.reclaim(asyncio.get_running_loop().time())
            out = state.take(wanted)
            if len(out) >= wanted:
                return out
            writer = self._w()
            attached = state.log is not None

            def read(
                conn: sqlite3.Connection,
            ) -> tuple[Any, list[schema.Row], list[log_schema.LogRow]]:
                reader = None if attached else log_schema.reader(conn, stream)
                rows: list[schema.Row] = []
                if not state.legacy_done:
                    rows = conn.execute(
                        schema.SELECT_FRESH, (stream, state.fresh_cursor, _CHUNKS_PER_READ)
                    ).fetchall()
                log_rows: list[log_schema.LogRow] = []
                log, cursor = (state.log, state.log_cursor) if attached else (None, 0)
                if reader is not None:
                    log, cursor = reader[0], reader[1]
                if log is not None and len(rows) < _CHUNKS_PER_READ:
                    log_rows = log_schema.read_after(
                        conn, log, cursor, _CHUNKS_PER_READ - len(rows)
                    )
                if len(rows) + len(log_rows) < _CHUNKS_PER_READ:
                    rows += conn.execute(
                        schema.SELECT_DUE,
                        (
                            stream,
                            *state.cursor,
                            writer.now(),
                            _CHUNKS_PER_READ - len(rows) - len(log_rows),
                        ),
                    ).fetchall()
                fresh_before, cursor_before = state.advance(rows)

                def undo() -> None:
                    state.fresh_cursor, state.cursor = fresh_before, cursor_before

                writer.on_rollback(undo)
                return reader, rows, log_rows

            reader, rows, log_rows = await writer.submit(read)
            if state is not self._streams.get(stream):
                return out  # purged while reading
            if reader is not None and state.log is None:
                state.attach(*reader)
            if not any(r[1] == 0 for r in rows):
                state.legacy_done = True  # nothing is published to the chunks table any more
            state.load(rows)
            state.load_log(log_rows)
            floor = moved_floor(state)
            if floor is not None:  # chunks skipped or settled before a restart
                writes = Writes(progress={stream: (floor, [])})
                await writer.submit(writes.apply)
                self._floors_moved.set()
            out.extend(state.take(wanted - len(out)))
            return out

    async def pull(
        self, stream: str, max_messages: int, timeout: float, fill: float = 0.0
    ) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        fill_deadline: float | None = None
        items: list[Item] = []
        state = self._stream(stream)
        try:
            while True:
                state = self._stream(stream)
                state.wakeup.clear()
                items.extend(await self._take(stream, state, max_messages - len(items)))
                if len(items) >= max_messages:
                    break
                if items:
                    if fill <= 0:
                        break
                    if fill_deadline is None:
                        fill_deadline = loop.time() + fill
                    until = fill_deadline
                else:
                    until = deadline
                if until - loop.time() <= 0:
                    break
                # Wake up when a held batch's lease runs out too: its events are ours then.
                lease_due = state.next_deadline()
                wait = min(until, lease_due) if lease_due is not None else until
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.wakeup.wait(), max(0.0, wait - loop.time()))
        except asyncio.CancelledError:
            # Cancelled mid-fill: put what was taken back, or nobody would hand it out.
            state.buffer.extendleft(reversed(items))
            raise
        if items:
            state.lease(items, loop.time() + self._lease)
        return list(items)

    # --- settle ----------------------------------------------------------------------------

    async def _write(self, writes: Writes) -> None:
        if writes:
            await self._w().submit(writes.apply)
            if writes.progress:
                self._floors_moved.set()

    async def ack(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await self._write(settle(deliveries, count_revoked=True))

    async def terminate(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await self._write(settle(deliveries, count_revoked=True))

    async def extend(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        state = self._streams.get(stream)
        if state is not None:
            deadline = asyncio.get_running_loop().time() + self._lease
            state.extend([d for d in deliveries if isinstance(d, Item)], deadline)

    async def release(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        state = self._streams.get(stream)
        if state is not None:
            state.hand_back([d for d in deliveries if isinstance(d, Item)])

    async def retry(self, stream: str, deliveries: Sequence[Delivery], delay: float) -> None:
        live = [
            d
            for d in deliveries
            if isinstance(d, Item) and not d.settled and not d.revoked and d.pending
        ]
        writes = settle(deliveries, count_revoked=False)
        writer = self._w()
        delay = max(0.0, delay)

        def reinsert(conn: sqlite3.Connection) -> None:
            at = writer.now() + delay
            schema.insert(
                conn,
                [
                    (
                        stream,
                        at,
                        d.published_at,
                        d.attempts,
                        1,
                        orjson.dumps([d.message_id]),
                        d.data,
                    )
                    for d in live
                ],
            )
            writes.apply(conn)

        await writer.submit(reinsert)
        if writes.progress:
            self._floors_moved.set()
        if live:
            state = self._stream(stream)
            asyncio.get_running_loop().call_later(delay, state.wakeup.set)

    # --- maintenance -----------------------------------------------------------------------

    async def purge(self, stream: str) -> None:
        state = self._streams.pop(stream, None)
        if state is not None:
            for item in state.buffer:
                item.chunk.dead = True
            for lease in state.leases:
                for item in lease.items:
                    item.chunk.dead = True
            for chunk in state.open_log.values():
                chunk.dead = True
            state.wakeup.set()

        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM chunks WHERE stream = ?", (stream,))
            log_schema.forget(conn, stream)

        await self._w().submit(delete)
        self._floors_moved.set()

    async def depth(self, stream: str) -> int:
        return (await self._w().submit(lambda conn: depths_of(conn, stream))).get(stream, 0)

    async def depths(self) -> dict[str, int]:
        return await self._w().submit(depths_of)

    async def _drop_read(self) -> None:
        """Drop log chunks every reader is past (and older than the retention), so the file
        stays the size of what is queued."""
        while True:
            await self._floors_moved.wait()
            self._floors_moved.clear()
            cutoff = time.time() - self._retention

            def drop(conn: sqlite3.Connection, cutoff: float = cutoff) -> int:
                return log_schema.drop_read(conn, cutoff)

            with contextlib.suppress(Exception):  # the next moved floor tries again
                await self._w().submit(drop)
            await asyncio.sleep(_CLEANUP_SECONDS)

    async def expire(self, max_age: float) -> dict[str, int]:
        """Drop and count events older than `max_age` that no live lease holds (expiry.py)."""
        counts = await expire(self._w(), self._streams, max_age)
        self._floors_moved.set()
        return counts
