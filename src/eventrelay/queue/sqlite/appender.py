"""Appending to the logs: every publish made during one turn of the event loop becomes one row
per log (and skip list), written in one writer operation, and one wake-up for the consumer.

Single-event requests at thousands per second would otherwise cost a row, a zstd frame, a
writer hand-off and a wake-up datagram each; this way they share them, as a batch request
does. A publish returns once its row is committed (durable, like every other write).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence

import orjson

from eventrelay.queue.base import Message
from eventrelay.queue.sqlite import log_schema
from eventrelay.queue.sqlite.writer import Writer

_Key = tuple[str, str | None]  # (log, skip field)


class _Group:
    __slots__ = ("done", "messages", "published_at")

    def __init__(self, done: asyncio.Future[None], published_at: float) -> None:
        self.done = done
        self.messages: list[Message] = []
        self.published_at = published_at


class Appender:
    def __init__(self, writer: Writer, on_stored: Callable[[list[str]], None]) -> None:
        self._writer = writer
        self._on_stored = on_stored  # the logs just appended to (wake their readers)
        self._pending: dict[_Key, _Group] = {}
        self._scheduled = False

    async def append(self, log: str, messages: Sequence[Message], skip: Collection[str]) -> None:
        key = (log, log_schema.skip_field(skip))
        group = self._pending.get(key)
        if group is None:
            loop = asyncio.get_running_loop()
            group = self._pending[key] = _Group(loop.create_future(), time.time())
            if not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._flush)
        group.messages.extend(messages)
        # Shielded: a request cancelled meanwhile (client gone) must not cancel the others'.
        await asyncio.shield(group.done)

    def _flush(self) -> None:
        self._scheduled = False
        groups, self._pending = self._pending, {}
        rows = [
            (
                log,
                group.published_at,
                len(group.messages),
                skip,
                orjson.dumps([m.id for m in group.messages]),
                b"\n".join(m.data for m in group.messages),
            )
            for (log, skip), group in groups.items()
        ]

        def insert(conn: sqlite3.Connection) -> None:
            # Packed on the writer thread (zstd releases the GIL), beside the event loop.
            conn.executemany(
                log_schema.INSERT,
                [(*row[:5], log_schema.pack(row[5])) for row in rows],
            )

        stored = self._writer.submit(insert)

        def settle(result: asyncio.Future[None]) -> None:
            error = None if result.cancelled() else result.exception()
            for group in groups.values():
                if group.done.done():
                    continue
                if error is not None:
                    group.done.set_exception(error)
                    group.done.exception()  # seen: every request cancelled is no error
                else:
                    group.done.set_result(None)
            if error is None:
                self._on_stored(list(dict.fromkeys(log for log, _ in groups)))

        stored.add_done_callback(settle)
