"""Embedded durable queue: one SQLite file (WAL) in the data directory.

Layout: a publish writes one row ("chunk") per stream holding all of that request's events for
the stream, so a 500-event batch is one insert, not 500. Any number of processes may publish;
exactly one process consumes (a lock file enforces it), so leases live in its memory and handing
a message out costs no write.

Fresh chunks carry `available_at = 0` and are read in `seq` order: SQLite serialises writers and
`seq` is assigned inside the write transaction, so commit order equals `seq` order even across
processes, and a cursor over `seq` never skips a row. A retried event is re-inserted by the
consumer as its own row with `available_at` in the future, read through a second cursor over
`(available_at, seq)` on the consumer's own never-decreasing clock. A partly settled chunk
records which events are done (a bitmap, one small update per settle call); it is deleted once
every event in it is settled. After a crash the cursors start over, so everything not settled is
handed out again (at-least-once).

All SQL of one process runs on one writer thread that commits whatever is pending as one
transaction (group commit): many concurrent ingest requests share one fsync. Publishers in other
processes wake the consumer through a Unix datagram socket next to the file (a missed wake-up
costs at most the consumer's poll interval).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import os
import queue as thread_queue
import socket
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from eventrelay.queue.base import Delivery, Message

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    available_at REAL NOT NULL,
    published_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    count INTEGER NOT NULL,
    ids BLOB NOT NULL,
    payloads BLOB NOT NULL,
    done BLOB
);
CREATE INDEX IF NOT EXISTS chunks_by_stream ON chunks (stream, available_at, seq);
CREATE INDEX IF NOT EXISTS chunks_by_age ON chunks (published_at);
"""
_CHUNKS_PER_READ = 16
_MAX_OPS_PER_COMMIT = 2000


class QueueLocked(RuntimeError):
    """Another process consumes this queue; `holder` is what it wrote next to the lock (pid,
    command, address), when it could be read."""

    def __init__(self, path: Path, holder: Mapping[str, Any] | None) -> None:
        self.path = path
        self.holder = dict(holder or {})
        super().__init__(
            f"another eventrelay process{describe_holder(self.holder)} consumes {path}: one"
            " delivery process per data directory (run the others with `serve --no-workers`)"
        )


def describe_holder(holder: Mapping[str, Any]) -> str:
    """ " (pid 123, `eventrelay serve` on http://127.0.0.1:8084)", or "" when unknown."""
    parts = [f"pid {holder['pid']}"] if holder.get("pid") else []
    if holder.get("command"):
        where = f" on {holder['address']}" if holder.get("address") else ""
        parts.append(f"`eventrelay {holder['command']}`{where}")
    return f" ({', '.join(parts)})" if parts else ""


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        data = orjson.loads(os.pread(fd, 4096, 0))
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def lock_holder(queue_path: Path) -> dict[str, Any] | None:
    """Who consumes the queue at `queue_path` now: None when nobody does (the lock is free), else
    what the holder wrote in the lock file (possibly empty). Never creates anything."""
    try:
        fd = os.open(queue_path.with_suffix(".lock"), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read_holder(fd) or {}
        return None  # free (closing the descriptor releases the probe)
    finally:
        os.close(fd)


class _WakeProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_wake: Callable[[list[str]], None]) -> None:
        self._on_wake = on_wake

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_wake(data.decode(errors="replace").split("\n"))


class _Chunk:
    __slots__ = ("dead", "done", "remaining", "seq")

    def __init__(self, seq: int, count: int, done: bytes | None) -> None:
        self.seq = seq
        self.done = bytearray(done) if done else bytearray((count + 7) // 8)
        self.remaining = count - sum(bin(b).count("1") for b in self.done)
        self.dead = False

    def is_done(self, index: int) -> bool:
        return bool(self.done[index >> 3] & (1 << (index & 7)))

    def mark(self, index: int) -> None:
        self.done[index >> 3] |= 1 << (index & 7)
        self.remaining -= 1


class _Item:
    """A Delivery of the SQLite backend."""

    __slots__ = ("attempts", "chunk", "data", "index", "message_id", "published_at", "settled")

    def __init__(
        self,
        message_id: str,
        data: bytes,
        published_at: float,
        attempts: int,
        chunk: _Chunk,
        index: int,
    ) -> None:
        self.message_id = message_id
        self.data = data
        self.published_at = published_at
        self.attempts = attempts
        self.chunk = chunk
        self.index = index
        self.settled = False


class _Stream:
    __slots__ = ("buffer", "cursor", "fresh_cursor", "lock", "wakeup")

    def __init__(self) -> None:
        self.fresh_cursor = 0  # last seq handed out among fresh chunks
        self.cursor: tuple[float, int] = (0.0, 0)  # last (available_at, seq) among retried ones
        self.buffer: deque[_Item] = deque()
        self.lock = asyncio.Lock()
        self.wakeup = asyncio.Event()


class _Writer(threading.Thread):
    """Owns the sqlite3 connection; runs submitted functions in group-committed transactions."""

    def __init__(self, path: Path, synchronous: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="eventrelay-queue-writer", daemon=True)
        self._path = path
        self._synchronous = synchronous
        self._loop = loop
        self._ops: thread_queue.SimpleQueue[
            tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]] | None
        ] = thread_queue.SimpleQueue()
        self._last_now = 0.0
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def now(self) -> float:
        """Wall-clock seconds, never going backwards (cursor order depends on it)."""
        current = time.time()
        if current <= self._last_now:
            current = math.nextafter(self._last_now, math.inf)
        self._last_now = current
        return current

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = self._loop.create_future()
        self._ops.put((fn, future))
        return future

    def stop(self) -> None:
        self._ops.put(None)
        self.join(timeout=30)

    def run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")  # other processes publish too
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
            conn.executescript(_SCHEMA)
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        try:
            self._loop_ops(conn)
        finally:
            conn.close()

    def _loop_ops(self, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            first = self._ops.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < _MAX_OPS_PER_COMMIT:
                try:
                    op = self._ops.get_nowait()
                except thread_queue.Empty:
                    break
                if op is None:
                    stopping = True
                    break
                batch.append(op)
            results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
            try:
                conn.execute("BEGIN IMMEDIATE")
                for fn, future in batch:
                    results.append((future, fn(conn), None))
                conn.execute("COMMIT")
            except BaseException as exc:  # a failed group fails every op in it
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                results = [(future, None, exc) for _, future in batch]
            self._loop.call_soon_threadsafe(_resolve, results)


def _resolve(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in results:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


class SqliteQueue:
    lease_seconds: float | None = None  # handed-out messages stay with this process

    def __init__(
        self,
        path: Path,
        synchronous: str = "full",
        dedup_window: float = 120.0,
        dedup_capacity: int = 200_000,
        consumer: bool = True,
        holder: Mapping[str, Any] | None = None,
    ) -> None:
        self._path = path
        # A consumer takes the lock file and may pull; a publisher-only instance (an API process
        # next to a separate worker process) only appends.
        self._consumer = consumer
        self._synchronous = synchronous
        # Message ids remembered per stream: for `dedup_window` seconds, but at most
        # `dedup_capacity` of them (memory stays bounded at any ingest rate).
        self._dedup_window = dedup_window
        self._dedup_capacity = dedup_capacity
        self._dedup: dict[str, OrderedDict[str, float]] = {}
        self._streams: dict[str, _Stream] = {}
        self._writer: _Writer | None = None
        self._lock_fd: int | None = None
        self._holder = dict(holder or {})
        self._wake_path = path.with_suffix(".wake")
        self._wake_out: socket.socket | None = None
        self._wake_in: asyncio.DatagramTransport | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if self._consumer:
            self._lock_fd = self._take_lock()
        loop = asyncio.get_running_loop()
        writer = _Writer(self._path, self._synchronous, loop)
        writer.start()
        await asyncio.to_thread(writer.ready.wait)
        if writer.error is not None:
            raise writer.error
        self._writer = writer
        os.chmod(self._path, 0o600)
        if self._consumer:
            with contextlib.suppress(FileNotFoundError):
                self._wake_path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(self._wake_path))
            sock.setblocking(False)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _WakeProtocol(self._on_wake), sock=sock
            )
            self._wake_in = transport
        else:
            self._wake_out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._wake_out.setblocking(False)

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

    def _take_lock(self) -> int:
        """The consumer's lock, holding who we are (pid, command, address) for whoever finds it
        taken. Opened without truncating: the contents belong to the current holder."""
        fd = os.open(self._path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise QueueLocked(self._path, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, orjson.dumps({"pid": os.getpid(), **self._holder}), 0)
        return fd

    def _on_wake(self, streams: list[str]) -> None:
        for stream in streams:
            state = self._streams.get(stream)
            if state is not None:
                state.wakeup.set()

    def _wake_consumer(self, streams: list[str]) -> None:
        if self._wake_out is None:
            return
        # No consumer running, or its socket busy: nothing lost, it polls anyway.
        with contextlib.suppress(OSError):
            self._wake_out.sendto("\n".join(streams).encode(), str(self._wake_path))

    def _w(self) -> _Writer:
        if self._writer is None:
            raise RuntimeError("queue is not started")
        return self._writer

    def _stream(self, name: str) -> _Stream:
        state = self._streams.get(name)
        if state is None:
            state = self._streams[name] = _Stream()
        return state

    # --- publish ---------------------------------------------------------------------------

    def _fresh(self, stream: str, messages: Sequence[Message], now: float) -> list[Message]:
        seen = self._dedup.get(stream)
        if seen is None:
            if self._dedup_window <= 0:
                return list(messages)
            seen = self._dedup[stream] = OrderedDict()
        overflow = len(seen) - self._dedup_capacity
        while seen:
            key, expires = seen.popitem(last=False)
            if expires > now and overflow <= 0:
                seen[key] = expires
                seen.move_to_end(key, last=False)
                break
            overflow -= 1
        ids = [m.id for m in messages]
        # Fast path (the usual case): no id seen before, none repeated in this batch.
        if not (seen.keys() & ids) and len(set(ids)) == len(ids):
            return list(messages)
        fresh: list[Message] = []
        batch_ids: set[str] = set()
        for message in messages:
            if message.id in seen or message.id in batch_ids:
                continue
            batch_ids.add(message.id)
            fresh.append(message)
        return fresh

    def _remember(self, stream: str, messages: Sequence[Message], now: float) -> None:
        seen = self._dedup.get(stream)
        if seen is None:
            return
        seen.update(dict.fromkeys([m.id for m in messages], now + self._dedup_window))

    async def publish(self, batches: Mapping[str, Sequence[Message]]) -> None:
        now = time.time()
        rows: list[tuple[str, bytes, bytes, int]] = []
        kept: dict[str, list[Message]] = {}
        for stream, messages in batches.items():
            fresh = self._fresh(stream, messages, now)
            if not fresh:
                continue
            kept[stream] = fresh
            rows.append(
                (
                    stream,
                    orjson.dumps([m.id for m in fresh]),
                    b"\n".join(m.data for m in fresh),
                    len(fresh),
                )
            )
        if not rows:
            return
        writer = self._w()

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO chunks (stream, available_at, published_at, attempts, count, ids,"
                " payloads) VALUES (?, 0, ?, 0, ?, ?, ?)",
                [(s, now, n, ids, data) for s, ids, data, n in rows],
            )

        await writer.submit(insert)
        for stream, messages in kept.items():
            self._remember(stream, messages, now)
            if self._consumer:
                self._stream(stream).wakeup.set()
        if not self._consumer:
            self._wake_consumer(list(kept))

    # --- consume ---------------------------------------------------------------------------

    async def _take(self, stream: str, state: _Stream, wanted: int) -> list[_Item]:
        async with state.lock:
            out = [state.buffer.popleft() for _ in range(min(wanted, len(state.buffer)))]
            if len(out) >= wanted:
                return out
            writer = self._w()
            fresh_after = state.fresh_cursor
            cursor = state.cursor

            def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
                rows = conn.execute(
                    "SELECT seq, available_at, published_at, attempts, count, ids, payloads, done"
                    " FROM chunks WHERE stream = ? AND available_at = 0"
                    " AND seq > ? ORDER BY seq LIMIT ?",
                    (stream, fresh_after, _CHUNKS_PER_READ),
                ).fetchall()
                if len(rows) < _CHUNKS_PER_READ:
                    rows += conn.execute(
                        "SELECT seq, available_at, published_at, attempts, count, ids, payloads,"
                        " done FROM chunks WHERE stream = ? AND available_at > 0"
                        " AND (available_at, seq) > (?, ?) AND available_at <= ?"
                        " ORDER BY available_at, seq LIMIT ?",
                        (
                            stream,
                            cursor[0],
                            cursor[1],
                            writer.now(),
                            _CHUNKS_PER_READ - len(rows),
                        ),
                    ).fetchall()
                return rows

            rows = await writer.submit(read)
            if state is not self._streams.get(stream):
                return out  # purged while reading
            for seq, available_at, published_at, attempts, count, ids, payloads, done in rows:
                if available_at == 0:
                    state.fresh_cursor = max(state.fresh_cursor, seq)
                else:
                    state.cursor = (available_at, seq)
                chunk = _Chunk(seq, count, done)
                message_ids = orjson.loads(ids)
                parts = payloads.split(b"\n")
                for index, (message_id, data) in enumerate(zip(message_ids, parts, strict=True)):
                    if not chunk.is_done(index):
                        state.buffer.append(
                            _Item(message_id, data, published_at, attempts + 1, chunk, index)
                        )
            more = min(wanted - len(out), len(state.buffer))
            out.extend(state.buffer.popleft() for _ in range(more))
            return out

    async def pull(
        self, stream: str, max_messages: int, timeout: float, fill: float = 0.0
    ) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        fill_deadline: float | None = None
        items: list[_Item] = []
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
                remaining = until - loop.time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.wakeup.wait(), remaining)
        except asyncio.CancelledError:
            # Cancelled mid-fill: put what was taken back, or it would stay leased forever.
            state.buffer.extendleft(reversed(items))
            raise
        return list(items)

    # --- settle ----------------------------------------------------------------------------

    def _settle(
        self, deliveries: Sequence[Delivery]
    ) -> tuple[list[tuple[int]], list[tuple[bytes, int]]]:
        """Mark deliveries settled: (chunks to delete, partly settled chunks to update)."""
        touched: dict[int, _Chunk] = {}
        for delivery in deliveries:
            assert isinstance(delivery, _Item)
            if delivery.settled:
                continue
            delivery.settled = True
            chunk = delivery.chunk
            chunk.mark(delivery.index)
            if not chunk.dead:
                touched[chunk.seq] = chunk
        deletes = [(c.seq,) for c in touched.values() if c.remaining <= 0]
        updates = [(bytes(c.done), c.seq) for c in touched.values() if c.remaining > 0]
        return deletes, updates

    @staticmethod
    def _apply(
        conn: sqlite3.Connection,
        deletes: list[tuple[int]],
        updates: list[tuple[bytes, int]],
    ) -> None:
        if deletes:
            conn.executemany("DELETE FROM chunks WHERE seq = ?", deletes)
        if updates:
            conn.executemany("UPDATE chunks SET done = ? WHERE seq = ?", updates)

    async def _finish(self, deliveries: Sequence[Delivery]) -> None:
        deletes, updates = self._settle(deliveries)
        if deletes or updates:
            await self._w().submit(lambda conn: self._apply(conn, deletes, updates))

    async def ack(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await self._finish(deliveries)

    async def extend(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        return None

    async def terminate(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        await self._finish(deliveries)

    async def retry(self, stream: str, deliveries: Sequence[Delivery], delay: float) -> None:
        live = [
            d for d in deliveries if isinstance(d, _Item) and not d.settled and not d.chunk.dead
        ]
        deletes, updates = self._settle(deliveries)
        writer = self._w()
        delay = max(0.0, delay)

        def reinsert(conn: sqlite3.Connection) -> None:
            at = writer.now() + delay
            conn.executemany(
                "INSERT INTO chunks (stream, available_at, published_at, attempts, count, ids,"
                " payloads) VALUES (?, ?, ?, ?, 1, ?, ?)",
                [
                    (stream, at, d.published_at, d.attempts, orjson.dumps([d.message_id]), d.data)
                    for d in live
                ],
            )
            self._apply(conn, deletes, updates)

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
            state.wakeup.set()
        self._dedup.pop(stream, None)

        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM chunks WHERE stream = ?", (stream,))

        await self._w().submit(delete)

    async def depth(self, stream: str) -> int:
        def count(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COALESCE(SUM(count), 0) FROM chunks WHERE stream = ?", (stream,)
            ).fetchone()
            return int(row[0])

        return await self._w().submit(count)

    async def expire(self, max_age: float) -> dict[str, int]:
        writer = self._w()
        held = {item.chunk.seq for state in self._streams.values() for item in state.buffer}

        def sweep(conn: sqlite3.Connection) -> dict[str, int]:
            cutoff = writer.now() - max_age
            rows = conn.execute(
                "SELECT seq, stream, count, available_at FROM chunks WHERE published_at < ?",
                (cutoff,),
            ).fetchall()
            counts: dict[str, int] = {}
            victims = []
            for seq, stream, count, available_at in rows:
                state = self._streams.get(stream)
                handed_out = state is not None and (
                    seq <= state.fresh_cursor
                    if available_at == 0
                    else (available_at, seq) <= state.cursor
                )
                if seq in held or handed_out:
                    continue  # a consumer holds it: it settles (and expires) it itself
                victims.append((seq,))
                counts[stream] = counts.get(stream, 0) + int(count)
            conn.executemany("DELETE FROM chunks WHERE seq = ?", victims)
            return counts

        return await writer.submit(sweep)
