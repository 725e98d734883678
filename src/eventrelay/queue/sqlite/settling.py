"""What settling hand-outs writes: chunk-table rows deleted or given their bitmap (retried and
legacy events), and per stream the new floor of its log position and the bitmaps of the log
chunks above it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from eventrelay.queue.base import Delivery
from eventrelay.queue.sqlite import log_schema, schema
from eventrelay.queue.sqlite.consumer import Chunk, Item, StreamState

# stream -> (its new floor, or None if unchanged; [(log seq, settled bitmap)])
Progress = dict[str, tuple[int | None, list[tuple[int, bytes]]]]


@dataclass(slots=True)
class Writes:
    deletes: list[tuple[int]] = field(default_factory=list)
    updates: list[tuple[bytes, int]] = field(default_factory=list)
    progress: Progress = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.deletes or self.updates or self.progress)

    def apply(self, conn: sqlite3.Connection) -> None:
        schema.apply_settled(conn, self.deletes, self.updates)
        for stream, (floor, bitmaps) in self.progress.items():
            log_schema.write_progress(conn, stream, floor, bitmaps)


def settle(deliveries: Sequence[Delivery], count_revoked: bool) -> Writes:
    """End these hand-outs; mark their events settled (a revoked hand-out's only when
    `count_revoked`) and say what to write."""
    touched: dict[int, Chunk] = {}  # by identity: log and chunk-table seqs are separate
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
            touched[id(chunk)] = chunk
    writes = Writes()
    by_reader: dict[StreamState, list[Chunk]] = {}
    for chunk in touched.values():
        if chunk.reader is not None:
            by_reader.setdefault(chunk.reader, []).append(chunk)
        elif chunk.remaining <= 0:
            writes.deletes.append((chunk.seq,))
        else:
            writes.updates.append((bytes(chunk.done), chunk.seq))
    for state, chunks in by_reader.items():
        for chunk in chunks:
            if chunk.remaining <= 0:
                state.open_log.pop(chunk.seq, None)
        floor = moved_floor(state)
        above = floor if floor is not None else state.floor
        bitmaps = [(c.seq, bytes(c.done)) for c in chunks if c.seq > above]
        writes.progress[state.name] = (floor, bitmaps)
    return writes


def moved_floor(state: StreamState) -> int | None:
    """The stream's floor if it moved since last written (and note it as written)."""
    floor = state.current_floor()
    if floor == state.floor:
        return None
    state.floor = floor
    return floor
