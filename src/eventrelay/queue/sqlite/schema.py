"""Storage of the embedded queue: one table of chunks, and every statement run on it.

A chunk holds all events of one publish for one stream (`count` ids and payloads); `done` is a
bitmap of the events already settled when only some are. Fresh chunks have `available_at = 0`;
a retried event is re-inserted alone with `available_at` in the future.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

SCHEMA = """
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

# (seq, available_at, published_at, attempts, count, ids, payloads, done)
Row = tuple[int, float, float, int, int, bytes, bytes, bytes | None]

SELECT_FRESH = (
    "SELECT seq, available_at, published_at, attempts, count, ids, payloads, done FROM chunks"
    " WHERE stream = ? AND available_at = 0 AND seq > ? ORDER BY seq LIMIT ?"
)
SELECT_DUE = (
    "SELECT seq, available_at, published_at, attempts, count, ids, payloads, done FROM chunks"
    " WHERE stream = ? AND available_at > 0 AND (available_at, seq) > (?, ?)"
    " AND available_at <= ? ORDER BY available_at, seq LIMIT ?"
)
INSERT = (
    "INSERT INTO chunks (stream, available_at, published_at, attempts, count, ids, payloads)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def settled_count(done: bytes | None) -> int:
    return sum(bin(b).count("1") for b in done) if done else 0


def apply_settled(
    conn: sqlite3.Connection, deletes: Sequence[tuple[int]], updates: Sequence[tuple[bytes, int]]
) -> None:
    """Delete fully settled chunks, store the bitmap of partly settled ones."""
    if deletes:
        conn.executemany("DELETE FROM chunks WHERE seq = ?", deletes)
    if updates:
        conn.executemany("UPDATE chunks SET done = ? WHERE seq = ?", updates)


def insert(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    conn.executemany(INSERT, rows)


def depths(conn: sqlite3.Connection, stream: str | None = None) -> dict[str, int]:
    """Unsettled events per stream (partly settled chunks count only what is left)."""
    if stream is None:
        totals = conn.execute("SELECT stream, SUM(count) FROM chunks GROUP BY stream")
        partial = conn.execute("SELECT stream, done FROM chunks WHERE done IS NOT NULL")
    else:
        totals = conn.execute(
            "SELECT stream, SUM(count) FROM chunks WHERE stream = ? GROUP BY stream", (stream,)
        )
        partial = conn.execute(
            "SELECT stream, done FROM chunks WHERE stream = ? AND done IS NOT NULL", (stream,)
        )
    counts = {name: int(total) for name, total in totals}
    for name, done in partial:
        counts[name] -= settled_count(done)
    return counts


def old_chunks(conn: sqlite3.Connection, cutoff: float) -> list[tuple[int, str, float, int, Any]]:
    """(seq, stream, available_at, count, done) of chunks published before `cutoff`."""
    return conn.execute(
        "SELECT seq, stream, available_at, count, done FROM chunks WHERE published_at < ?",
        (cutoff,),
    ).fetchall()
