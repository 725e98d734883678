"""Behaviour specific to the embedded SQLite queue."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import orjson
import pytest

from eventrelay.queue.base import Message
from eventrelay.queue.sqlite import QueueLocked, SqliteQueue
from eventrelay.queue.sqlite.dedup import DedupWindow


async def test_one_process_per_file(tmp_path: Path) -> None:
    first = SqliteQueue(tmp_path / "q.db")
    await first.start()
    try:
        second = SqliteQueue(tmp_path / "q.db")
        with pytest.raises(QueueLocked):
            await second.start()
    finally:
        await first.close()


async def test_group_commit_many_concurrent_publishers(tmp_path: Path) -> None:
    q = SqliteQueue(tmp_path / "q.db")
    await q.start()
    try:
        await q.subscribe("s", "log")
        await asyncio.gather(*(q.publish("log", [Message(f"m{i}", b"{}")]) for i in range(500)))
        assert await q.depth("s") == 500
    finally:
        await q.close()


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_each_event_is_stored_once_and_dropped_once_everyone_is_past(
    tmp_path: Path,
) -> None:
    """Ten readers, one row per publish; the row goes once all ten settled it (no
    retention), not before."""
    q = SqliteQueue(tmp_path / "q.db", synchronous="normal")
    await q.start()
    try:
        streams = [f"i{n}" for n in range(10)]
        for stream in streams:
            await q.subscribe(stream, "src")
        await q.publish("src", [Message(f"m{i}", b"{}") for i in range(100)])
        assert rows(tmp_path / "q.db", "log") == 1
        for stream in streams[:-1]:
            got = await q.pull(stream, 100, timeout=1)
            await q.ack(stream, got)
        await asyncio.sleep(1.5)
        assert rows(tmp_path / "q.db", "log") == 1  # the last reader has not settled it
        got = await q.pull(streams[-1], 100, timeout=1)
        await q.ack(streams[-1], got[:40])
        await q.ack(streams[-1], got[40:])
        deadline = time.monotonic() + 5
        while rows(tmp_path / "q.db", "log") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert rows(tmp_path / "q.db", "log") == 0
        assert rows(tmp_path / "q.db", "progress") == 0
    finally:
        await q.close()


async def test_settled_events_stay_settled_across_restarts(tmp_path: Path) -> None:
    """Out-of-order settling inside and across chunks survives a restart exactly."""
    path = tmp_path / "q.db"
    q = SqliteQueue(path, synchronous="normal")
    await q.start()
    await q.subscribe("s", "src")
    for chunk in range(3):
        await q.publish("src", [Message(f"c{chunk}-{i}", b"{}") for i in range(4)])
    got = await q.pull("s", 12, timeout=1)
    by_id = {d.message_id: d for d in got}
    await q.ack("s", [by_id[m] for m in ("c1-0", "c1-1", "c1-2", "c1-3", "c0-2", "c2-3")])
    await q.close()
    q = SqliteQueue(path, synchronous="normal")
    await q.start()
    try:
        await q.subscribe("s", "src")
        assert await q.depth("s") == 6
        again = await q.pull("s", 20, timeout=1)
        assert sorted(d.message_id for d in again) == [
            "c0-0",
            "c0-1",
            "c0-3",
            "c2-0",
            "c2-1",
            "c2-2",
        ]
    finally:
        await q.close()


async def test_a_data_directory_of_the_previous_release_is_drained(tmp_path: Path) -> None:
    """The release before the log stored each event once per integration in `chunks` rows:
    after an upgrade those are delivered first, once, next to what the log brings."""
    path = tmp_path / "q.db"
    with sqlite3.connect(path) as conn:  # the previous release's table and rows
        conn.execute(
            "CREATE TABLE chunks (seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL,"
            " available_at REAL NOT NULL, published_at REAL NOT NULL, attempts INTEGER NOT NULL,"
            " count INTEGER NOT NULL, ids BLOB NOT NULL, payloads BLOB NOT NULL, done BLOB)"
        )
        for stream in ("a", "b"):
            conn.execute(
                "INSERT INTO chunks (stream, available_at, published_at, attempts, count, ids,"
                " payloads) VALUES (?, 0, ?, 0, 2, ?, ?)",
                (
                    stream,
                    time.time(),
                    orjson.dumps([f"{stream}-old-0", f"{stream}-old-1"]),
                    b'{"n":0}\n{"n":1}',
                ),
            )
    q = SqliteQueue(path, synchronous="normal")
    await q.start()
    try:
        for stream in ("a", "b"):
            await q.subscribe(stream, "src")
        assert await q.depths() == {"a": 2, "b": 2}
        await q.publish("src", [Message("new", b"{}")])
        for stream in ("a", "b"):
            got = await q.pull(stream, 10, timeout=1)
            got += await q.pull(stream, 10, timeout=0.3)
            assert sorted(d.message_id for d in got) == sorted(
                [f"{stream}-old-0", f"{stream}-old-1", "new"]
            )
            await q.ack(stream, got)
        assert await q.depths() == {}
        assert rows(path, "chunks") == 0
    finally:
        await q.close()


async def test_depth_leaves_out_what_a_stream_skips(tmp_path: Path) -> None:
    q = SqliteQueue(tmp_path / "q.db", synchronous="normal")
    await q.start()
    try:
        await q.subscribe("on", "src")
        await q.subscribe("paused", "src")
        await q.publish("src", [Message("m", b"{}")], skip=["paused"])
        assert await q.depths() == {"on": 1}
    finally:
        await q.close()


def test_dedup_window_remembers_for_half_to_all_of_its_window_within_its_capacity() -> None:
    window = DedupWindow(window=10.0, capacity=1000)
    first = [Message(f"m{i}", b"{}") for i in range(3)]
    window.remember("log", first, now=0.0)
    again = [*first, Message("new", b"{}"), Message("new", b"{}")]
    assert [m.id for m in window.fresh("log", again, now=4.0)] == ["new"]
    assert [m.id for m in window.fresh("other", first, now=4.0)] == ["m0", "m1", "m2"]
    assert window.fresh("log", first, now=9.0) == []  # previous generation: still seen
    assert len(window.fresh("log", first, now=10.5)) == 3  # a whole window later: gone
    crowded = DedupWindow(window=3600.0, capacity=100)
    for i in range(1000):
        crowded.remember("log", [Message(f"c{i}", b"{}")], now=1.0)
    assert sum(len(g.current) + len(g.previous) for g in crowded._logs.values()) <= 100
