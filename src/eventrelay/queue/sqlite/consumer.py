"""What the consuming process knows of one stream: its read cursors, the buffer of events read
but not handed out yet, and the leases of handed-out batches.

Cursors: fresh chunks are read in `seq` order, retried ones in `(available_at, seq)` order.
They move inside the writer's transaction (so a sweep in the same transaction sees what a read
took) and move back if that transaction fails.

Leases work like JetStream's ack wait: a pulled batch is reserved for `lease_seconds`, renewed
by `extend`; a batch whose lease runs out (its holder hung or forgot it) or that its holder
releases is handed out again. The old hand-out is revoked: a late ack or terminate from it
still counts (the event is done), a late retry is ignored (the new hand-out carries on).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence

import orjson

from eventrelay.queue.sqlite.schema import Row


class Chunk:
    __slots__ = ("dead", "done", "remaining", "seq")

    def __init__(self, seq: int, count: int, done: bytes | None) -> None:
        self.seq = seq
        self.done = bytearray(done) if done else bytearray((count + 7) // 8)
        self.remaining = count - sum(bin(b).count("1") for b in self.done)
        self.dead = False  # purged: nothing of it is written any more

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
    __slots__ = ("buffer", "cursor", "fresh_cursor", "leases", "lock", "wakeup")

    def __init__(self) -> None:
        self.fresh_cursor = 0  # last seq read among fresh chunks
        self.cursor: tuple[float, int] = (0.0, 0)  # last (available_at, seq) among retried ones
        self.buffer: deque[Item] = deque()
        self.leases: set[Lease] = set()
        self.lock = asyncio.Lock()
        self.wakeup = asyncio.Event()

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
