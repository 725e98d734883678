"""Storage of the event logs: each accepted event once, however many streams read it.

`log` holds one row per publish ("chunk": all events of one ingest request for one source), in
`seq` order. `readers` holds, per stream, the log it reads and its `floor`: every chunk of the
log up to `floor` is settled for the stream. `progress` holds the bitmap of settled events of
the chunks above the floor that are partly (or out of order, fully) settled. A chunk goes once
every reader's floor is past it and it is older than the retention.

`seq` is AUTOINCREMENT so a number is never given twice (a floor must never cover a new chunk).
Small columns come before the blobs, so counting reads no payload pages. A chunk's payloads
(its events' JSON, one per line) are one zstd frame: JSON of like events shrinks several times,
which is less to write and fsync at ingest and less disk per queued event. Compressing and
decompressing happen on the writer thread (zstd releases the GIL), off the event loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

import zstandard

LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    log TEXT NOT NULL,
    published_at REAL NOT NULL,
    count INTEGER NOT NULL,
    skip TEXT,
    ids BLOB NOT NULL,
    payloads BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_by_log ON log (log, seq);
CREATE INDEX IF NOT EXISTS log_by_age ON log (published_at);
CREATE TABLE IF NOT EXISTS readers (
    stream TEXT PRIMARY KEY,
    log TEXT NOT NULL,
    floor INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readers_by_log ON readers (log);
CREATE TABLE IF NOT EXISTS progress (
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    done BLOB NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
"""

# (seq, published_at, count, skip, ids, payloads)
LogRow = tuple[int, float, int, str | None, bytes, bytes]

INSERT = "INSERT INTO log (log, published_at, count, skip, ids, payloads) VALUES (?, ?, ?, ?, ?, ?)"
SELECT_AFTER = (
    "SELECT seq, published_at, count, skip, ids, payloads FROM log"
    " WHERE log = ? AND seq > ? ORDER BY seq LIMIT ?"
)
# A stream is named in `skip` as "\n<stream>\n" (found with instr in SQL).


# Used on the writer thread only (zstd contexts are not for concurrent use). Level 1: fast,
# and most of the gain on JSON.
_compressor = zstandard.ZstdCompressor(level=1)
_decompressor = zstandard.ZstdDecompressor()


def pack(payloads: bytes) -> bytes:
    return _compressor.compress(payloads)


def read_after(conn: sqlite3.Connection, log: str, after: int, limit: int) -> list[LogRow]:
    """Up to `limit` chunks of `log` after `after`, their payloads decompressed."""
    rows = conn.execute(SELECT_AFTER, (log, after, limit)).fetchall()
    return [(*row[:5], _decompressor.decompress(row[5])) for row in rows]


def skip_field(streams: Iterable[str]) -> str | None:
    names = sorted(set(streams))
    return "\n" + "\n".join(names) + "\n" if names else None


def skips(skip: str | None, stream: str) -> bool:
    return skip is not None and f"\n{stream}\n" in skip


def subscribe(conn: sqlite3.Connection, stream: str, log: str, since: float | None) -> None:
    """Add a reader whose floor is the last chunk published before `since` (a new stream
    starts there); an existing reader keeps its position."""
    conn.execute(
        "INSERT OR IGNORE INTO readers (stream, log, floor) VALUES (?, ?, COALESCE("
        "(SELECT MAX(seq) FROM log WHERE log = ? AND published_at < ?), 0))",
        (stream, log, log, since if since is not None else float("-inf")),
    )


def reader(conn: sqlite3.Connection, stream: str) -> tuple[str, int, dict[int, bytes]] | None:
    """(log, floor, bitmaps of settled events above the floor) of a stream, or None."""
    row = conn.execute("SELECT log, floor FROM readers WHERE stream = ?", (stream,)).fetchone()
    if row is None:
        return None
    log, floor = row
    done = conn.execute(
        "SELECT seq, done FROM progress WHERE stream = ? AND seq > ?", (stream, floor)
    ).fetchall()
    return str(log), int(floor), {int(seq): bytes(bits) for seq, bits in done}


def write_progress(
    conn: sqlite3.Connection,
    stream: str,
    floor: int | None,
    bitmaps: Sequence[tuple[int, bytes]],
) -> None:
    """Store a stream's new floor (dropping the bitmaps it covers) and the bitmaps of chunks
    above it."""
    if floor is not None:
        conn.execute("UPDATE readers SET floor = ? WHERE stream = ?", (floor, stream))
        conn.execute("DELETE FROM progress WHERE stream = ? AND seq <= ?", (stream, floor))
    kept = [(stream, seq, done) for seq, done in bitmaps if floor is None or seq > floor]
    if kept:
        conn.executemany(
            "INSERT OR REPLACE INTO progress (stream, seq, done) VALUES (?, ?, ?)", kept
        )


def forget(conn: sqlite3.Connection, stream: str) -> None:
    conn.execute("DELETE FROM readers WHERE stream = ?", (stream,))
    conn.execute("DELETE FROM progress WHERE stream = ?", (stream,))


def _settled(done: bytes | None) -> int:
    return sum(bin(b).count("1") for b in done) if done else 0


_UNSETTLED = (
    "SELECT r.stream, SUM(l.count) FROM readers r JOIN log l ON l.log = r.log AND l.seq > r.floor"
    " AND (l.skip IS NULL OR instr(l.skip, char(10) || r.stream || char(10)) = 0)"
    " WHERE ? IS NULL OR r.stream = ? GROUP BY r.stream"
)
_SETTLED_ABOVE = (
    "SELECT p.stream, p.done FROM progress p JOIN readers r ON r.stream = p.stream"
    " AND p.seq > r.floor WHERE ? IS NULL OR p.stream = ?"
)


def unsettled(conn: sqlite3.Connection, stream: str | None = None) -> dict[str, int]:
    """Events each stream has not settled in its log (above its floor, skips excluded)."""
    counts = {
        str(name): int(total) for name, total in conn.execute(_UNSETTLED, (stream, stream)) if total
    }
    for name, done in conn.execute(_SETTLED_ABOVE, (stream, stream)):
        if name in counts:
            counts[name] -= _settled(done)
    return {name: count for name, count in counts.items() if count > 0}


def aged(
    conn: sqlite3.Connection, stream: str, log: str, after: int, cutoff: float
) -> tuple[int, list[tuple[int, int, bool]]]:
    """The chunks of `log` above `after` published before `cutoff`, up to the first younger
    one: (the last such seq or `after`, [(seq, count, skipped for this stream)])."""
    young = conn.execute(
        "SELECT MIN(seq) FROM log WHERE log = ? AND seq > ? AND published_at >= ?",
        (log, after, cutoff),
    ).fetchone()[0]
    rows = conn.execute(
        "SELECT seq, count, skip FROM log WHERE log = ? AND seq > ? AND seq < ? ORDER BY seq",
        (log, after, young if young is not None else 2**62),
    ).fetchall()
    last = rows[-1][0] if rows else after
    return last, [(seq, count, skips(skip, stream)) for seq, count, skip in rows]


def progress_between(
    conn: sqlite3.Connection, stream: str, low: int, high: int
) -> dict[int, bytes]:
    rows = conn.execute(
        "SELECT seq, done FROM progress WHERE stream = ? AND seq > ? AND seq <= ?",
        (stream, low, high),
    )
    return {int(seq): bytes(done) for seq, done in rows}


def readers(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    rows = conn.execute("SELECT stream, log, floor FROM readers")
    return [(str(stream), str(log), int(floor)) for stream, log, floor in rows]


def drop_read(conn: sqlite3.Connection, retention_cutoff: float) -> int:
    """Delete the chunks every reader of their log is past and that are older than the
    retention; chunks of logs nobody reads go by age alone. Returns how many."""
    dropped = 0
    floors = conn.execute("SELECT log, MIN(floor) FROM readers GROUP BY log").fetchall()
    for log, floor in floors:
        dropped += conn.execute(
            "DELETE FROM log WHERE log = ? AND seq <= ? AND published_at < ?",
            (log, floor, retention_cutoff),
        ).rowcount
    dropped += conn.execute(
        "DELETE FROM log WHERE published_at < ? AND log NOT IN (SELECT log FROM readers)",
        (retention_cutoff,),
    ).rowcount
    return dropped
