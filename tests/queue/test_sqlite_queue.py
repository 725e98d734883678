"""Behaviour specific to the embedded SQLite queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from eventrelay.queue.base import Message
from eventrelay.queue.sqlite import QueueLocked, SqliteQueue


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
        await asyncio.gather(*(q.publish({"s": [Message(f"m{i}", b"{}")]}) for i in range(500)))
        assert await q.depth("s") == 500
    finally:
        await q.close()
