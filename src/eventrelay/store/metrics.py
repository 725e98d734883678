"""Delivery metrics: additive counters per integration and minute.

`MetricsRecorder` aggregates in memory and flushes every second with one upsert per
(integration, minute, name, key) that adds to the stored value, so any number of processes can
write the same rows. A process killed between flushes loses at most that second of counters
(never events). Latencies are kept as histograms (log-spaced buckets, ~10 % resolution) so p95
can be computed over any range.
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

from eventrelay.store.db import Database
from eventrelay.store.tables import delivery_metrics
from eventrelay.tasks import stop_task

log = logging.getLogger("eventrelay.metrics")

LATENCY_FACTOR = 1.2
LATENCY_BUCKETS = 100  # 1.2**100 ms is ~2.6 years: every real latency fits

Key = tuple[str, datetime, str, str]


def latency_bucket(ms: float) -> int:
    if ms <= 1:
        return 0
    return min(LATENCY_BUCKETS, math.ceil(math.log(ms) / math.log(LATENCY_FACTOR)))


def bucket_value(index: int) -> float:
    """A representative latency (ms) for a bucket: the geometric middle of its bounds."""
    if index == 0:
        return 1.0
    return float(LATENCY_FACTOR ** (index - 0.5))


def minute_of(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch - epoch % 60, UTC)


class MetricsRecorder:
    def __init__(self, db: Database, interval: float = 1.0) -> None:
        self._db = db
        self._interval = interval
        self._pending: dict[Key, int] = defaultdict(int)
        self._task: asyncio.Task[None] | None = None

    def add(
        self, integration_id: str, name: str, value: int = 1, key: str = "", at: float | None = None
    ) -> None:
        if value:
            bucket = minute_of(at if at is not None else _now())
            self._pending[(integration_id, bucket, name, key)] += value

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
        if not self._pending:
            return
        pending, self._pending = self._pending, defaultdict(int)
        rows = [
            {"integration_id": i, "bucket": b, "name": n, "key": k, "value": v}
            for (i, b, n, k), v in pending.items()
        ]
        try:
            async with self._db.transaction() as conn:
                await add_rows(conn, rows)
        except Exception:
            for key, value in pending.items():  # keep them for the next flush
                self._pending[key] += value
            raise


def _now() -> float:
    return time.time()


async def add_rows(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    dialect = conn.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(delivery_metrics)
    stmt = stmt.on_conflict_do_update(
        index_elements=["integration_id", "bucket", "name", "key"],
        set_={"value": delivery_metrics.c.value + stmt.excluded.value},
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
