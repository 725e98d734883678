"""The one thread that owns the queue's sqlite3 connection and runs every statement of this
process, committing whatever is pending as one transaction (group commit): many concurrent
ingest requests share one fsync.

An operation may register an undo callback (`on_rollback`) for in-memory state it changed
inside the transaction; it runs if the group fails, so memory never runs ahead of the file.
"""

from __future__ import annotations

import asyncio
import math
import queue as thread_queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from eventrelay.queue.sqlite.log_schema import LOG_SCHEMA
from eventrelay.queue.sqlite.schema import SCHEMA

T = TypeVar("T")

MAX_OPS_PER_COMMIT = 2000

_Op = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]


class Writer(threading.Thread):
    """Runs submitted functions in group-committed transactions on its own connection."""

    def __init__(self, path: Path, synchronous: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="eventrelay-queue-writer", daemon=True)
        self._path = path
        self._synchronous = synchronous
        self._loop = loop
        self._ops: thread_queue.SimpleQueue[_Op | None] = thread_queue.SimpleQueue()
        self._last_now = 0.0
        self._undo: list[Callable[[], None]] = []
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def now(self) -> float:
        """Wall-clock seconds, never going backwards (cursor order depends on it)."""
        current = time.time()
        if current <= self._last_now:
            current = math.nextafter(self._last_now, math.inf)
        self._last_now = current
        return current

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """From inside an operation: run `undo` if this transaction is rolled back."""
        self._undo.append(undo)

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
            conn.executescript(SCHEMA + LOG_SCHEMA)
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
            while len(batch) < MAX_OPS_PER_COMMIT:
                try:
                    op = self._ops.get_nowait()
                except thread_queue.Empty:
                    break
                if op is None:
                    stopping = True
                    break
                batch.append(op)
            self._loop.call_soon_threadsafe(_resolve, self._run_group(conn, batch))

    def _run_group(
        self, conn: sqlite3.Connection, batch: list[_Op]
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        self._undo = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, future in batch:
                results.append((future, fn(conn), None))
            conn.execute("COMMIT")
        except BaseException as exc:  # a failed group fails every op in it
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for undo in reversed(self._undo):
                undo()
            results = [(future, None, exc) for _, future in batch]
        self._undo = []
        return results


def _resolve(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in results:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
