"""Prometheus metrics of this process (GET /metrics). Per-integration delivery figures with
history are in the admin API (/v1/admin/integrations/{id}/metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INGEST_REQUESTS = Counter(
    "eventrelay_ingest_requests_total", "Ingest HTTP requests", ["endpoint", "status"]
)
INGEST_EVENTS = Counter("eventrelay_ingest_events_total", "Events received", ["result"])
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
