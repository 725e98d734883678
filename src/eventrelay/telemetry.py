"""Prometheus metrics of this process (GET /metrics). Per-integration delivery figures with
history are in the admin API (/v1/admin/integrations/{id}/metrics); the `outcome` label of
`eventrelay_delivery_events_total` uses that API's metric names (successes, retried,
discarded, expired, filtered), and docs/deployment.md lists every series."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# The `_created` series (one per labelled counter) double the series count and carry nothing
# an alert uses.
disable_created_metrics()  # type: ignore[no-untyped-call]

INTEGRATION_STATUSES = ("active", "paused", "error")

INGEST_REQUESTS = Counter(
    "eventrelay_ingest_requests_total", "Ingest HTTP requests", ["endpoint", "status"]
)
INGEST_EVENTS = Counter(
    "eventrelay_ingest_events_total", "Events received", ["source_id", "result"]
)
DELIVERY_EVENTS = Counter(
    "eventrelay_delivery_events_total",
    "Events settled by delivery",
    ["integration_id", "type", "outcome"],
)
DELIVERY_REQUEST_SECONDS = Histogram(
    "eventrelay_delivery_request_seconds",
    "Vendor request latency",
    ["type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INTEGRATION_BACKLOG = Gauge(
    "eventrelay_integration_backlog_events",
    "Events queued for an integration, in flight included (exported by delivering processes)",
    ["integration_id", "type"],
)
INTEGRATION_STATUS = Gauge(
    "eventrelay_integration_status",
    "1 for the integration's current status (active, paused, error), 0 for the others",
    ["integration_id", "type", "status"],
)


def forget_integration(integration_id: str, type_: str) -> None:
    """Drop a deleted integration's series."""
    for status in INTEGRATION_STATUSES:
        _remove(INTEGRATION_STATUS, integration_id, type_, status)
    _remove(INTEGRATION_BACKLOG, integration_id, type_)


def _remove(metric: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
