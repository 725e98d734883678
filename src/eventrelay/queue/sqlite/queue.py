"""SqliteQueue: the Queue contract on one SQLite file (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from eventrelay.queue.base import Delivery, Message
from eventrelay.queue.sqlite import schema
from eventrelay.queue.sqlite.consumer import Chunk, Item, StreamState
from eventrelay.queue.sqlite.dedup import DedupWindow
from eventrelay.queue.sqlite.lock import take_lock
from eventrelay.queue.sqlite.wake import WakeSender, listen
from eventrelay.queue.sqlite.writer import Writer

_CHUNKS_PER_READ = 16

Settled = tuple[list[tuple[int]], list[tuple[bytes, int]]]


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
        self._lock_fd: int | None = None
        self._holder = dict(holder or {})  # who we are, written into the consumer's lock
        self._wake_path = path.with_suffix(".wake")
        self._wake_out: WakeSender | None = None
        self._wake_in: asyncio.DatagramTransport | None = None

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
        os.chmod(self._path, 0o600)
        if self._consumer:
            self._wake_in = await listen(self._wake_path, self._on_wake)
        else:
            self._wake_out = WakeSender(self._wake_path)

    async def close(self) -> None:
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

    def _on_wake(self, streams: list[str]) -> None:
        for stream in streams:
            state = self._streams.get(stream)
            if state is not None:
                state.wakeup.set()

    def _w(self) -> Writer:
        if self._writer is None:
            raise RuntimeError("queue is not started")
        return self._writer

    def _stream(self, name: str) -> StreamState:
        state = self._streams.get(name)
        if state is None:
            state = self._streams[name] = StreamState()
        return state

    # --- publish ---------------------------------------------------------------------------

    async def publish(self, batches: Mapping[str, Sequence[Message]]) -> None:
        now = time.time()
        rows: list[tuple[str, float, float, int, int, bytes, bytes]] = []
        kept: dict[str, list[Message]] = {}
        for stream, messages in batches.items():
            fresh = self._dedup.fresh(stream, messages, now)
            if not fresh:
                continue
            kept[stream] = fresh
            ids = orjson.dumps([m.id for m in fresh])
            rows.append((stream, 0, now, 0, len(fresh), ids, b"\n".join(m.data for m in fresh)))
        if not rows:
            return
        await self._w().submit(lambda conn: schema.insert(conn, rows))
        for stream, messages in kept.items():
            self._dedup.remember(stream, messages, now)
            if self._consumer:
                self._stream(stream).wakeup.set()
        if self._wake_out is not None:
            self._wake_out.send(list(kept))

    # --- consume ---------------------------------------------------------------------------

    async def _take(self, stream: str, state: StreamState, wanted: int) -> list[Item]:
        async with state.lock:
            state.reclaim(asyncio.get_running_loop().time())
            out = state.take(wanted)
            if len(out) >= wanted:
                return out
            writer = self._w()

            def read(conn: sqlite3.Connection) -> list[schema.Row]:
                rows: list[schema.Row] = conn.execute(
                    schema.SELECT_FRESH, (stream, state.fresh_cursor, _CHUNKS_PER_READ)
                ).fetchall()
                if len(rows) < _CHUNKS_PER_READ:
                    rows += conn.execute(
                        schema.SELECT_DUE,
                        (stream, *state.cursor, writer.now(), _CHUNKS_PER_READ - len(rows)),
                    ).fetchall()
                fresh_before, cursor_before = state.advance(rows)

                def undo() -> None:
                    state.fresh_cursor, state.cursor = fresh_before, cursor_before

                writer.on_rollback(undo)
                return rows

            rows = await writer.submit(read)
            if state is not self._streams.get(stream):
                return out  # purged while reading
            state.load(rows)
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

    def _settle(self, deliveries: Sequence[Delivery], count_revoked: bool) -> Settled:
        """End these hand-outs; mark their events settled (a revoked hand-out's only when
        `count_revoked`). Returns (chunks to delete, partly settled chunks to update)."""
        touched: dict[int, Chunk] = {}
        for delivery in deliveries:
            assert isinstance(delivery, Item)
            if delivery.settled:
                continue
            delivery.settled = True
            if delivery.lease is not None:
                delivery.lease.close(delivery)
            if delivery.revoked and not count_revoked:
                continue
            chunk = delivery.chunk
            if chunk.mark(delivery.index) and not chunk.dead:
                touched[chunk.seq] = chunk
        deletes = [(c.seq,) for c in touched.values() if c.remaining <= 0]
        updates = [(bytes(c.done), c.seq) for c in touched.values() if c.remaining > 0]
        return deletes, updates

    async def _write_settled(self, settled: Settled) -> None:
        deletes, updates = settled
        if deletes or updates:
            await self._w().submit(lambda conn: schema.apply_settled(conn, deletes, updates))

    async def ack(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await self._write_settled(self._settle(deliveries, count_revoked=True))

    async def terminate(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await self._write_settled(self._settle(deliveries, count_revoked=True))

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
        deletes, updates = self._settle(deliveries, count_revoked=False)
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
            schema.apply_settled(conn, deletes, updates)

        await writer.submit(reinsert)
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
            state.wakeup.set()
        self._dedup.forget(stream)

        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM chunks WHERE stream = ?", (stream,))

        await self._w().submit(delete)

    async def depth(self, stream: str) -> int:
        counts = await self._w().submit(lambda conn: schema.depths(conn, stream))
        return counts.get(stream, 0)

    async def depths(self) -> dict[str, int]:
        return await self._w().submit(schema.depths)

    async def expire(self, max_age: float) -> dict[str, int]:
        """Drop and count events older than `max_age` that no live lease holds: never read,
        read but not handed out yet, or in a batch whose lease ran out (abandoned). A batch
        under a live lease is left to its holder, which expires (and counts) it itself."""
        writer = self._w()
        cutoff = time.time() - max_age
        now = asyncio.get_running_loop().time()
        counts: dict[str, int] = {}
        old: list[Item] = []
        for stream, state in self._streams.items():
            state.reclaim(now)
            young = [i for i in state.buffer if i.pending and i.published_at >= cutoff]
            aged = [i for i in state.buffer if i.pending and i.published_at < cutoff]
            state.buffer.clear()
            state.buffer.extend(young)
            old += aged
            if aged:
                counts[stream] = len(aged)
        settled = self._settle(old, count_revoked=True)

        def sweep(conn: sqlite3.Connection) -> dict[str, int]:
            schema.apply_settled(conn, *settled)
            victims: list[tuple[int]] = []
            for seq, stream, available_at, count, done in schema.old_chunks(conn, cutoff):
                state = self._streams.get(stream)
                if state is not None and state.has_read(seq, available_at):
                    continue  # in memory: dealt with above, or under a live lease
                victims.append((seq,))
                counts[stream] = counts.get(stream, 0) + count - schema.settled_count(done)
            conn.executemany("DELETE FROM chunks WHERE seq = ?", victims)
            return counts

        return await writer.submit(sweep)
