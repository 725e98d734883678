"""Delivery metrics: additive counters per integration and minute.

`MetricsRecorder` aggregates in memory and flushes every second with one upsert per
(integration, minute, name, key) that adds to the stored value, so any number of processes can
write the same rows. A process killed between flushes loses at most that second of counters
(never events); a row the database refuses is dropped, never the rest of the flush. Latencies
are kept as histograms (log-spaced buckets, 20 % wide) with their minimum and maximum, so a
percentile can be estimated over any range.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.logs import sanitize
from eventrelay.store.db import Database
from eventrelay.store.tables import delivery_metrics
from eventrelay.tasks import stop_task

log = logging.getLogger("eventrelay.metrics")

MAX_KEY = 64  # delivery_metrics.key
LATENCY_FACTOR = 1.2
LATENCY_BUCKETS = 100  # 1.2**100 ms is ~2.6 years: every real latency fits

Key = tuple[str, datetime, str, str]


def latency_bucket(ms: float) -> int:
    if ms <= 1:
        return 0
    return min(LATENCY_BUCKETS, math.ceil(math.log(ms) / math.log(LATENCY_FACTOR)))


def bucket_bounds(index: int) -> tuple[float, float]:
    """The latencies (ms) a bucket holds: (lower, upper]; bucket 0 holds [0, 1]."""
    if index <= 0:
        return 0.0, 1.0
    return float(LATENCY_FACTOR ** (index - 1)), float(LATENCY_FACTOR**index)


def minute_of(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch - epoch % 60, UTC)


class MetricsRecorder:
    def __init__(self, db: Database, interval: float = 1.0) -> None:
        self._db = db
        self._interval = interval
        self._pending: dict[Key, int] = defaultdict(int)
        # Per latency and minute: the smallest and largest observation (ms), so a percentile
        # estimated from the histogram is never outside what was observed.
        self._low: dict[Key, int] = {}
        self._high: dict[Key, int] = {}
        self._task: asyncio.Task[None] | None = None

    def add(
        self, integration_id: str, name: str, value: int = 1, key: str = "", at: float | None = None
    ) -> None:
        if value:
            bucket = minute_of(at if at is not None else _now())
            # Keys can come from vendor text (a discard reason): storable, and fitting the column.
            self._pending[(integration_id, bucket, name, sanitize(key)[:MAX_KEY])] += value

    def latency(
        self, integration_id: str, name: str, ms: float, count: int = 1, at: float | None = None
    ) -> None:
        """Record `count` observations of a latency (time_to_success, time_to_first_attempt)."""
        if count <= 0:
            return
        bucket = minute_of(at if at is not None else _now())
        ms = max(0.0, ms)
        self._pending[(integration_id, bucket, name, str(latency_bucket(ms)))] += count
        self._pending[(integration_id, bucket, f"{name}_sum_ms", "")] += round(ms * count)
        low = (integration_id, bucket, f"{name}_min_ms", "")
        high = (integration_id, bucket, f"{name}_max_ms", "")
        self._low[low] = min(self._low.get(low, math.floor(ms)), math.floor(ms))
        self._high[high] = max(self._high.get(high, math.ceil(ms)), math.ceil(ms))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="metrics-flush")

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception as exc:
                log.warning("metrics flush failed", extra={"error_type": type(exc).__name__})

    async def flush(self) -> None:
        if not (self._pending or self._low or self._high):
            return
        taken = {"add": self._pending, "min": self._low, "max": self._high}
        self._pending, self._low, self._high = defaultdict(int), {}, {}
        rows = {merge: _rows(values) for merge, values in taken.items()}
        try:
            async with self._db.transaction() as conn:
                for merge, batch in rows.items():
                    await add_rows(conn, batch, merge)
            return
        except Exception as exc:
            log.info(
                "metrics flush: storing rows one by one", extra={"error_type": type(exc).__name__}
            )
        # One row the database refuses must not cost the others: store them one by one. If
        # none can be stored the database is away: keep everything for the next flush.
        refused: list[tuple[str, dict[str, Any]]] = []
        for merge, batch in rows.items():
            for row in batch:
                try:
                    async with self._db.transaction() as conn:
                        await add_rows(conn, [row], merge)
                except Exception:
                    refused.append((merge, row))
        if len(refused) < sum(len(batch) for batch in rows.values()):
            for _, row in refused:
                log.warning(
                    "metric dropped: the database refused it",
                    extra={"integration_id": row["integration_id"], "metric": row["name"]},
                )
            return
        for merge, row in refused:
            self._restore(merge, row)
        raise RuntimeError("metrics could not be stored")

    def _restore(self, merge: str, row: dict[str, Any]) -> None:
        key = (row["integration_id"], row["bucket"], row["name"], row["key"])
        if merge == "add":
            self._pending[key] += row["value"]
        elif merge == "min":
            self._low[key] = min(self._low.get(key, row["value"]), row["value"])
        else:
            self._high[key] = max(self._high.get(key, row["value"]), row["value"])


def _rows(values: Mapping[Key, int]) -> list[dict[str, Any]]:
    return [
        {"integration_id": i, "bucket": b, "name": n, "key": k, "value": v}
        for (i, b, n, k), v in values.items()
    ]


def _now() -> float:
    return time.time()


async def add_rows(conn: AsyncConnection, rows: list[dict[str, Any]], merge: str = "add") -> None:
    """Upsert counters: `add` to the stored value, or keep the `min` / `max` of both."""
    if not rows:
        return
    dialect = conn.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(delivery_metrics)
    stored, new = delivery_metrics.c.value, stmt.excluded.value
    if merge == "add":
        value: Any = stored + new
    elif dialect == "postgresql":
        value = func.least(stored, new) if merge == "min" else func.greatest(stored, new)
    else:  # SQLite's scalar min() and max() take two arguments
        value = func.min(stored, new) if merge == "min" else func.max(stored, new)
    stmt = stmt.on_conflict_do_update(
        index_elements=["integration_id", "bucket", "name", "key"], set_={"value": value}
    )
    # Sorted so concurrent writers take row locks in the same order (no deadlocks).
    rows.sort(key=lambda r: (r["integration_id"], r["bucket"], r["name"], r["key"]))
    await conn.execute(stmt, rows)


async def read(
    conn: AsyncConnection, integration_id: str, start: datetime, end: datetime
) -> list[Mapping[Any, Any]]:
    rows = await conn.execute(
        select(delivery_metrics).where(
            delivery_metrics.c.integration_id == integration_id,
            delivery_metrics.c.bucket >= start,
            delivery_metrics.c.bucket < end,
        )
    )
    return [r._mapping for r in rows]


async def filtered_last_hour(
    conn: AsyncConnection, integration_ids: Sequence[str], now: float | None = None
) -> dict[str, dict[str, int]]:
    """Events filtered (not sent) per integration and reason over the last hour (60 one-minute
    buckets, the current one included): one query for a whole page of integrations."""
    if not integration_ids:
        return {}
    since = minute_of(now if now is not None else _now()) - timedelta(minutes=59)
    m = delivery_metrics.c
    rows = await conn.execute(
        select(m.integration_id, m.key, func.sum(m.value))
        .where(m.integration_id.in_(list(integration_ids)), m.name == "filtered", m.bucket >= since)
        .group_by(m.integration_id, m.key)
    )
    out: dict[str, dict[str, int]] = {}
    for integration_id, reason, total in rows:
        if total:
            out.setdefault(integration_id, {})[reason or "unknown"] = int(total)
    return out
