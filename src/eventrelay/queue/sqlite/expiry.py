"""Expiry of the embedded queue: events past the max age that nobody holds are dropped and
counted per stream (read ones from memory, unread ones from the chunks table and the log), and
the depth of each stream."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence

from eventrelay.queue.sqlite import log_schema, schema
from eventrelay.queue.sqlite.consumer import Item, StreamState
from eventrelay.queue.sqlite.settling import Writes, moved_floor, settle
from eventrelay.queue.sqlite.writer import Writer


async def expire(writer: Writer, streams: dict[str, StreamState], max_age: float) -> dict[str, int]:
    """Drop and count events older than `max_age` that no live lease holds: never read,
    read but not handed out yet, or in a batch whose lease ran out (abandoned). A batch
    under a live lease is left to its holder, which expires (and counts) it itself."""
    cutoff = time.time() - max_age
    now = asyncio.get_running_loop().time()
    counts: dict[str, int] = {}
    old: list[Item] = []
    for stream, state in streams.items():
        state.reclaim(now)
        young = [i for i in state.buffer if i.pending and i.published_at >= cutoff]
        aged = [i for i in state.buffer if i.pending and i.published_at < cutoff]
        state.buffer.clear()
        state.buffer.extend(young)
        old += aged
        if aged:
            counts[stream] = len(aged)
    writes = settle(old, count_revoked=True)

    def sweep(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
        writes.apply(conn)
        victims: list[tuple[int]] = []
        for seq, stream, available_at, count, done in schema.old_chunks(conn, cutoff):
            state = streams.get(stream)
            if state is not None and state.has_read(seq, available_at):
                continue  # in memory: dealt with above, or under a live lease
            victims.append((seq,))
            counts[stream] = counts.get(stream, 0) + count - schema.settled_count(done)
        conn.executemany("DELETE FROM chunks WHERE seq = ?", victims)
        return log_schema.readers(conn)

    for stream, log, floor in await writer.submit(sweep):
        aged_count = await _expire_log(writer, streams, stream, log, floor, cutoff)
        if aged_count:
            counts[stream] = counts.get(stream, 0) + aged_count
    return counts


async def _expire_log(
    writer: Writer,
    streams: dict[str, StreamState],
    stream: str,
    log: str,
    floor: int,
    cutoff: float,
) -> int:
    """Count and pass over the log chunks older than `cutoff` that the stream has not
    read yet (what it has read is in memory: dealt with by `expire`)."""
    state = streams.get(stream)
    if state is None or state.log is None:

        def unread(conn: sqlite3.Connection) -> int:
            last, rows = log_schema.aged(conn, stream, log, floor, cutoff)
            count = _unsettled_in(conn, stream, floor, last, rows)
            if last > floor:
                log_schema.write_progress(conn, stream, last, [])
            return count

        return await writer.submit(unread)
    async with state.lock:
        after = state.log_cursor

        def unread_here(conn: sqlite3.Connection) -> tuple[int, int]:
            last, rows = log_schema.aged(conn, stream, log, after, cutoff)
            return last, _unsettled_in(conn, stream, after, last, rows)

        last, count = await writer.submit(unread_here)
        if state is not streams.get(stream) or last <= after:
            return 0
        for seq in [s for s in state.progress if s <= last]:
            del state.progress[seq]
        state.log_cursor = last
        moved = moved_floor(state)
        if moved is not None:
            await writer.submit(Writes(progress={stream: (moved, [])}).apply)
        return count


def _unsettled_in(
    conn: sqlite3.Connection,
    stream: str,
    after: int,
    last: int,
    rows: Sequence[tuple[int, int, bool]],
) -> int:
    settled = log_schema.progress_between(conn, stream, after, last)
    return sum(
        count - schema.settled_count(settled.get(seq))
        for seq, count, skipped in rows
        if not skipped
    )


def depths_of(conn: sqlite3.Connection, stream: str | None = None) -> dict[str, int]:
    """Unsettled events per stream: in its log, plus its retried (and legacy) rows."""
    counts = log_schema.unsettled(conn, stream)
    for name, count in schema.depths(conn, stream).items():
        counts[name] = counts.get(name, 0) + count
    return {name: count for name, count in counts.items() if count > 0}
