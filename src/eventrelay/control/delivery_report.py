"""Delivery reports for the admin API: the metrics summary (the shape Segment's Public API uses
for delivery metrics) and recent failed attempts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from eventrelay.errors import invalid, not_found
from eventrelay.runtime import Runtime
from eventrelay.store import integrations as integration_store
from eventrelay.store import metrics as metric_store
from eventrelay.timeutil import iso_millis, iso_seconds

GRANULARITY = {
    "minute": (timedelta(minutes=1), timedelta(hours=1), timedelta(hours=4)),
    "hour": (timedelta(hours=1), timedelta(hours=24), timedelta(days=7)),
    "day": (timedelta(days=1), timedelta(days=7), timedelta(days=30)),
}
LATENCIES = ("time_to_success", "time_to_first_attempt")


def _floor(at: datetime, step: timedelta) -> datetime:
    epoch = at.timestamp()
    size = step.total_seconds()
    return datetime.fromtimestamp(epoch - epoch % size, UTC)


# Reports cover this span: metrics are never older than 1970, and far-off dates (year 1 or
# 9999) would overflow the window arithmetic.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def as_utc(name: str, value: datetime | None) -> datetime | None:
    """A query parameter in UTC (naive: taken as UTC); 422 when outside the reporting span."""
    if value is None:
        return None
    try:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # an offset that moves it past year 9999 or before year 1
        value = LATEST
    if not EARLIEST <= value < LATEST:
        raise invalid(name, "must be between 1970-01-01T00:00:00Z and 3000-01-01T00:00:00Z")
    return value


def window(
    start: datetime | None, end: datetime | None, granularity: str
) -> tuple[datetime, datetime, timedelta]:
    step, default_range, max_range = GRANULARITY[granularity]
    start, end = as_utc("start", start), as_utc("end", end)
    end = end or datetime.now(UTC)
    end = _floor(end, step) + (step if end != _floor(end, step) else timedelta(0))
    start = _floor(start, step) if start else end - default_range
    if start >= end:
        raise invalid("start", "must be before end")
    if end - start > max_range:
        raise invalid("start", f"a {granularity} report covers at most {max_range}")
    return start, end, step


def quantile(
    histogram: Mapping[int, int],
    fraction: float,
    low: float | None = None,
    high: float | None = None,
) -> float | None:
    """The `fraction` quantile (ms) of a latency histogram, estimated the way Prometheus'
    histogram_quantile does: find the bucket holding that rank and interpolate linearly
    within it. The bucket's bounds are narrowed to the observed minimum and maximum (`low`,
    `high`), so the estimate is never outside what was observed (two samples of 40 and 69 ms
    give a p95 between them, not above 69 nor below the mean)."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = fraction * total
    running = 0
    for index in sorted(histogram):
        count = histogram[index]
        if count <= 0:
            continue
        if running + count >= rank:
            lower, upper = metric_store.bucket_bounds(index)
            if low is not None:
                lower = min(max(lower, low), upper)
            if high is not None:
                upper = max(min(upper, high), lower)
            value = lower + (upper - lower) * max(0.0, rank - running) / count
            if low is not None:
                value = max(value, low)
            if high is not None:
                value = min(value, high)
            return round(value, 1)
        running += count
    return None


class _Totals:
    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.breakdown: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.histograms: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.sums: dict[str, int] = defaultdict(int)
        self.lows: dict[str, int] = {}
        self.highs: dict[str, int] = {}

    def add(self, name: str, key: str, value: int) -> None:
        if name in LATENCIES:
            self.histograms[name][int(key)] += value
        elif name.endswith("_sum_ms"):
            self.sums[name.removesuffix("_sum_ms")] += value
        elif name.endswith("_min_ms"):
            base = name.removesuffix("_min_ms")
            self.lows[base] = min(self.lows.get(base, value), value)
        elif name.endswith("_max_ms"):
            base = name.removesuffix("_max_ms")
            self.highs[base] = max(self.highs.get(base, value), value)
        else:
            self.counts[name] += value
            if key:
                self.breakdown[name][key] += value

    def p95(self, name: str) -> float | None:
        return quantile(self.histograms[name], 0.95, self.lows.get(name), self.highs.get(name))

    def p50(self, name: str) -> float | None:
        return quantile(self.histograms[name], 0.5, self.lows.get(name), self.highs.get(name))

    def latency(self, name: str) -> dict[str, Any]:
        count = sum(self.histograms[name].values())
        average = round(self.sums[name] / count, 1) if count else None
        return {
            "metricName": name,
            "unit": "ms",
            "total": count,
            "breakdown": [
                {"metricName": f"{name}_average", "value": average},
                {"metricName": f"{name}_p50", "value": self.p50(name)},
                {"metricName": f"{name}_p95", "value": self.p95(name)},
            ],
        }

    def summary(self) -> list[dict[str, Any]]:
        first = self.counts["success_first_attempt"]
        after = self.counts["success_after_retry"]

        def broken_down(name: str) -> dict[str, Any]:
            return {
                "metricName": name,
                "total": self.counts[name],
                "breakdown": [
                    {"metricName": key, "value": value}
                    for key, value in sorted(self.breakdown[name].items())
                ],
            }

        return [
            {
                "metricName": "successes",
                "total": first + after,
                "breakdown": [
                    {"metricName": "successes_on_first_attempt", "value": first},
                    {"metricName": "successes_after_retry", "value": after},
                ],
            },
            {"metricName": "retried", "total": self.counts["retried"]},
            broken_down("discarded"),
            {"metricName": "expired", "total": self.counts["expired"]},
            broken_down("filtered"),
            {"metricName": "queued", "total": self.counts["queued"]},
            self.latency("time_to_success"),
            self.latency("time_to_first_attempt"),
            *self.loads(),
        ]

    def loads(self) -> list[dict[str, Any]]:
        """File-loading types (S3, warehouses): committed loads, values sent to <table>_discards,
        events found already loaded after a crash."""
        if not self.counts["load_batches"]:
            return []
        parts = (("values_discarded", "values_discarded"), ("recovered", "load_recovered"))
        return [
            {
                "metricName": "loads",
                "total": self.counts["load_batches"],
                "breakdown": [{"metricName": n, "value": self.counts[k]} for n, k in parts],
            }
        ]

    def point(self) -> dict[str, Any]:
        return {
            "successes": self.counts["success_first_attempt"] + self.counts["success_after_retry"],
            "retried": self.counts["retried"],
            "discarded": self.counts["discarded"],
            "expired": self.counts["expired"],
            "filtered": self.counts["filtered"],
            "queued": self.counts["queued"],
            "time_to_success_p50": self.p50("time_to_success"),
            "time_to_success_p95": self.p95("time_to_success"),
        }


async def metrics_report(
    rt: Runtime,
    org_id: str,
    integration_id: str,
    start: datetime | None,
    end: datetime | None,
    granularity: str,
) -> dict[str, Any]:
    begin, finish, step = window(start, end, granularity)
    async with rt.db.read() as conn:
        if await integration_store.get(conn, org_id, integration_id) is None:
            raise not_found("integration")
        rows = await metric_store.read(conn, integration_id, begin, finish)
    total = _Totals()
    buckets: dict[datetime, _Totals] = defaultdict(_Totals)
    for row in rows:
        total.add(row["name"], row["key"], int(row["value"]))
        buckets[_floor(row["bucket"], step)].add(row["name"], row["key"], int(row["value"]))
    series = []
    at = begin
    while at < finish:
        series.append({"start": iso_seconds(at), **buckets[at].point()})
        at += step
    pending = await rt.queue.depth(integration_id) if rt.queue else None
    return {
        "integration_id": integration_id,
        "start": iso_seconds(begin),
        "end": iso_seconds(finish),
        "granularity": granularity,
        "pending": pending,
        "metrics": total.summary(),
        "series": series,
    }


def present_failure(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "time": iso_millis(row["created_at"]),
        "outcome": row["outcome"],
        "reason": row["reason"],
        "status_code": row["status_code"],
        "error": row["error"],
        "attempt": row["attempt"],
        "event_count": row["event_count"],
        "message_ids": row["message_ids"],
        "request": row["request"],
        "response": row["response"],
    }
