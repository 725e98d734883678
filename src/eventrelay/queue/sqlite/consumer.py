"""What the consuming process knows of one stream: its read cursors, the buffer of events read
but not handed out yet, and the leases of handed-out batches.

Cursors: the stream's log is read in `seq` order from its floor (`log_cursor`); the chunks read
and not yet settled are `open_log`, so the floor is the chunk before the first open one.
Retried events (and chunks a release before the log stored per stream, "legacy") are rows of
the chunks table: legacy ones in `seq` order, retried ones in `(available_at, seq)` order.
Chunk-table cursors move inside the writer's transaction (so a sweep in the same transaction
sees what a read took) and move back if that transaction fails; the log cursor moves when the
rows are loaded, on the event loop, under the stream's lock.

Leases work like JetStream's ack wait: a pulled batch is reserved for `lease_seconds`, renewed
by `extend`; a batch whose lease runs out (its holder hung or forgot it) or that its holder
releases is handed out again. The old hand-out is revoked: a late ack or terminate from it
still counts (the event is done), a late retry is ignored (the new hand-out carries on).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence

import orjson

from eventrelay.queue.sqlite.log_schema import LogRow, skips
from eventrelay.queue.sqlite.schema import Row


class Chunk:
    __slots__ = ("dead", "done", "reader", "remaining", "seq")

    def __init__(
        self, seq: int, count: int, done: bytes | None, reader: StreamState | None = None
    ) -> None:
        self.seq = seq
        self.done = bytearray(done) if done else bytearray((count + 7) // 8)
        self.remaining = count - sum(bin(b).count("1") for b in self.done)
        self.dead = False  # purged: nothing of it is written any more
        # The stream reading it, for a chunk of a log (its settling moves that stream's floor);
        # None for a row of the chunks table (retried or legacy events of one stream).
        self.reader = reader

    def is_done(self, index: int) -> bool:
        return bool(self.done[index >> 3] & (1 << (index & 7)))

    def mark(self, index: int) -> bool:
        """Mark one event settled; False if it already was."""
        byte, bit = index >> 3, 1 << (index & 7)
        if self.done[byte] & bit:
            return False
        self.done[byte] |= bit
        self.remaining -= 1
        return True


class Lease:
    """One pulled batch, reserved for its puller until `deadline` (loop time)."""

    __slots__ = ("deadline", "items", "open", "owner")

    def __init__(self, owner: StreamState, items: list[Item], deadline: float) -> None:
        self.owner = owner
        self.items = items
        self.deadline = deadline
        self.open = len(items)

    def close(self, item: Item) -> None:
        """`item`'s hand-out ended (settled or revoked): one fewer open in this batch."""
        item.lease = None
        self.open -= 1
        if self.open <= 0:
            self.owner.leases.discard(self)


class Item:
    """One hand-out of one event: a Delivery of the SQLite backend."""

    __slots__ = (
        "attempts",
        "chunk",
        "data",
        "index",
        "lease",
        "message_id",
        "published_at",
        "repeat",
        "revoked",
        "settled",
    )

    def __init__(
        self,
        message_id: str,
        data: bytes,
        published_at: float,
        attempts: int,
        chunk: Chunk,
        index: int,
    ) -> None:
        self.message_id = message_id
        self.data = data
        self.published_at = published_at
        self.attempts = attempts
        self.chunk = chunk
        self.index = index
        self.lease: Lease | None = None
        self.settled = False  # its holder settled it (or it was released)
        self.revoked = False  # handed out again since (lease ran out, or released)
        self.repeat = False  # a hand-out after a revoked one (which may settle it meanwhile)

    def again(self) -> Item:
        """The next hand-out of the same event."""
        item = Item(
            self.message_id,
            self.data,
            self.published_at,
            self.attempts + 1,
            self.chunk,
            self.index,
        )
        item.repeat = True
        return item

    @property
    def pending(self) -> bool:
        """Still to be delivered: not settled anywhere, not purged."""
        return not self.chunk.dead and not self.chunk.is_done(self.index)


class StreamState:
    __slots__ = (
        "buffer",
        "cursor",
        "floor",
        "fresh_cursor",
        "leases",
        "legacy_done",
        "lock",
        "log",
        "log_cursor",
        "name",
        "open_log",
        "progress",
        "wakeup",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.fresh_cursor = 0  # last seq read among legacy chunks
        self.legacy_done = False  # no legacy chunk left: stop looking
        self.cursor: tuple[float, int] = (0.0, 0)  # last (available_at, seq) among retried ones
        self.log: str | None = None  # the log it reads, once its reader row is loaded
        self.log_cursor = 0  # last log seq read
        self.floor = 0  # last floor written: every log chunk up to it is settled
        self.open_log: OrderedDict[int, Chunk] = OrderedDict()  # read, not settled, by seq
        self.progress: dict[int, bytes] = {}  # settled bitmaps above the floor, from the file
        self.buffer: deque[Item] = deque()
        self.leases: set[Lease] = set()
        self.lock = asyncio.Lock()
        self.wakeup = asyncio.Event()

    def attach(self, log: str, floor: int, progress: dict[int, bytes]) -> None:
        self.log = log
        self.log_cursor = self.floor = floor
        self.progress = progress

    def current_floor(self) -> int:
        """Every log chunk up to this one is settled: the one before the first open chunk."""
        for seq in self.open_log:
            return seq - 1
        return self.log_cursor

    def load_log(self, rows: Iterable[LogRow]) -> None:
        """Buffer the events of log chunks read after `log_cursor`, minus those already
        settled (before a restart) or skipped for this stream."""
        for seq, published_at, count, skip, ids, payloads in rows:
            self.log_cursor = max(self.log_cursor, seq)
            if skips(skip, self.name):
                continue
            done = self.progress.pop(seq, None)
            chunk = Chunk(seq, count, done, self)
            if chunk.remaining <= 0:
                continue
            self.open_log[seq] = chunk
            message_ids = orjson.loads(ids)
            pairs = enumerate(zip(message_ids, payloads.split(b"\n"), strict=True))
            self.buffer.extend(
                Item(message_id, data, published_at, 1, chunk, index)
                for index, (message_id, data) in pairs
                if done is None or not chunk.is_done(index)
            )

    # --- reading -----------------------------------------------------------------------------

    def has_read(self, seq: int, available_at: float) -> bool:
        """Whether this process has read the chunk (it is in memory, not only in the file)."""
        if available_at == 0:
            return seq <= self.fresh_cursor
        return (available_at, seq) <= self.cursor

    def advance(self, rows: Sequence[Row]) -> tuple[int, tuple[float, int]]:
        """Move the cursors past `rows`; returns the previous cursors (to undo)."""
        before = (self.fresh_cursor, self.cursor)
        for seq, available_at, *_ in rows:
            if available_at == 0:
                self.fresh_cursor = max(self.fresh_cursor, seq)
            else:
                self.cursor = max(self.cursor, (available_at, seq))
        return before

    def load(self, rows: Iterable[Row]) -> None:
        for seq, _, published_at, attempts, count, ids, payloads, done in rows:
            chunk = Chunk(seq, count, done)
            message_ids = orjson.loads(ids)
            parts = payloads.split(b"\n")
            pairs = enumerate(zip(message_ids, parts, strict=True))
            self.buffer.extend(
                Item(message_id, data, published_at, attempts + 1, chunk, index)
                for index, (message_id, data) in pairs
                if done is None or not chunk.is_done(index)
            )

    def take(self, wanted: int) -> list[Item]:
        out: list[Item] = []
        while self.buffer and len(out) < wanted:
            item = self.buffer.popleft()
            if item.chunk.dead or (item.repeat and not item.pending):
                continue  # purged, or settled meanwhile by the revoked hand-out before it
            out.append(item)
        return out

    # --- leases ------------------------------------------------------------------------------

    def lease(self, items: list[Item], deadline: float) -> None:
        lease = Lease(self, items, deadline)
        for item in items:
            item.lease = lease
        self.leases.add(lease)

    def next_deadline(self) -> float | None:
        return min((lease.deadline for lease in self.leases), default=None)

    def extend(self, items: Iterable[Item], deadline: float) -> None:
        for item in items:
            if item.lease is not None and not item.revoked and not item.settled:
                item.lease.deadline = deadline

    def reclaim(self, now: float) -> int:
        """Hand out again every batch whose lease ran out; returns how many events."""
        due = [lease for lease in self.leases if lease.deadline <= now]
        count = 0
        for lease in due:
            self.leases.discard(lease)
            count += self.hand_back(lease.items)
        return count

    def hand_back(self, items: Sequence[Item]) -> int:
        """Revoke these hand-outs and queue their events first in line again."""
        again: list[Item] = []
        for item in items:
            if item.settled or item.revoked:
                continue
            item.revoked = True
            if item.lease is not None:
                item.lease.close(item)
            if item.pending:
                again.append(item.again())
        self.buffer.extendleft(reversed(again))
        if again:
            self.wakeup.set()
        return len(again)
