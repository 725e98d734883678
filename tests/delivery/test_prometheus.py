"""Issue 10.9: Prometheus series as docs/deployment.md names them (one vocabulary with the
admin API's metric names), gauges for backlog and status per integration, `source_id` on the
ingest counters, no `_created` series; the admin metrics endpoint's percentiles are real
quantile estimates in milliseconds. Both shapes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from eventrelay.control.delivery_report import quantile
from eventrelay.delivery.settle import DISCARDED, EXPIRED, FILTERED, RETRIED, SUCCESSES
from eventrelay.settings import Settings
from eventrelay.store.metrics import latency_bucket
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.sink import Sink

DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
OUTCOMES = {SUCCESSES, RETRIED, DISCARDED, EXPIRED, FILTERED}


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the series `name` whose labels include `labels`, from /metrics text."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_the_documented_outcomes_are_the_ones_exported() -> None:
    """Alerts are written from the docs: the documented label values must be those emitted."""
    text = DEPLOYMENT.read_text()
    documented = set(re.findall(r'outcome="(\w+)"', text))
    assert documented == OUTCOMES
    exported = {m.name for m in REGISTRY.collect()}
    for series in set(re.findall(r"`(eventrelay_\w+?)(?:_total)?\{", text)):
        assert series in exported, series


async def _equals(read: Any, expected: float) -> bool:
    return bool(await read() == expected)


async def _scrape(pipe: Pipeline) -> str:
    r = await pipe.api.client.get("/metrics")
    assert r.status_code == 200
    return r.text


async def test_delivery_series_gauges_and_labels(settings: Settings, sink: Sink) -> None:
    sink.statuses = [200, 400]
    async with running_pipeline(settings) as pipe:
        src = await pipe.api.make_source()
        integration = await pipe.api.make_integration(
            src["id"], type="webhook", config={"url": sink.url + "/hook"}
        )
        iid = integration["id"]
        await pipe.track(src["write_key"], event="first")
        await sink.wait_for(lambda: len(sink.requests) == 1)
        await pipe.track(src["write_key"], event="second")

        async def settled() -> str | None:
            text = await _scrape(pipe)
            done = sample(
                text, "eventrelay_delivery_events_total", integration_id=iid, outcome=DISCARDED
            )
            return text if done == 1 else None

        text = await pipe.eventually(settled)
        assert (
            sample(text, "eventrelay_delivery_events_total", integration_id=iid, outcome=SUCCESSES)
            == 1
        )
        assert (
            sample(text, "eventrelay_ingest_events_total", source_id=src["id"], result="accepted")
            == 2
        )
        assert "_created" not in text
        assert (
            sample(text, "eventrelay_integration_status", integration_id=iid, status="active") == 1
        )
        assert (
            sample(text, "eventrelay_integration_status", integration_id=iid, status="error") == 0
        )

        sink.default, sink.headers = 503, {"Retry-After": "30"}  # three events wait in the queue
        for name in ("third", "fourth", "fifth"):
            await pipe.track(src["write_key"], event=name)
        await sink.wait_for(lambda: len(sink.requests) == 5)
        assert pipe.api.delivery is not None
        supervisor = pipe.api.delivery.supervisor

        async def backlog() -> float | None:
            await supervisor.refresh_gauges()
            return sample(
                await _scrape(pipe), "eventrelay_integration_backlog_events", integration_id=iid
            )

        assert await pipe.eventually(lambda: _equals(backlog, 3.0))

        r = await pipe.api.post(f"/v1/admin/integrations/{iid}/status", json={"status": "paused"})
        assert r.status_code == 200

        async def paused() -> str | None:
            text = await _scrape(pipe)
            status = sample(
                text, "eventrelay_integration_status", integration_id=iid, status="paused"
            )
            return text if status == 1 else None

        text = await pipe.eventually(paused)
        assert (
            sample(text, "eventrelay_integration_status", integration_id=iid, status="active") == 0
        )

        assert (await pipe.api.delete(f"/v1/admin/integrations/{iid}")).status_code == 204

        async def forgotten() -> bool:
            text = await _scrape(pipe)
            return sample(text, "eventrelay_integration_status", integration_id=iid) is None

        await pipe.eventually(forgotten)


@given(st.lists(st.floats(0.0, 1e7), min_size=1, max_size=200), st.sampled_from([0.5, 0.95, 0.99]))
def test_a_quantile_estimate_stays_within_what_was_observed(
    values: list[float], fraction: float
) -> None:
    histogram: dict[int, int] = {}
    for value in values:
        histogram[latency_bucket(value)] = histogram.get(latency_bucket(value), 0) + 1
    low, high = min(values), max(values)
    estimate = quantile(histogram, fraction, low, high)
    assert estimate is not None
    assert round(low, 1) - 0.1 <= estimate <= round(high, 1) + 0.1
    exact = sorted(values)[max(0, int(fraction * len(values) + 0.999999) - 1)]
    # Within the 20 % wide bucket of the true quantile (or the first bucket, up to 1 ms).
    assert estimate <= max(exact * 1.2, 1.0) + 0.1
    assert estimate >= exact / 1.2 - 0.1


async def test_the_metrics_endpoint_p95_is_not_below_the_mean(settings: Settings) -> None:
    async with running_pipeline(settings) as pipe:
        src = await pipe.api.make_source()
        integration = await pipe.api.make_integration(
            src["id"], type="webhook", config={"url": "http://127.0.0.1:9/x"}, enabled=False
        )
        metrics = pipe.api.runtime.metrics
        assert metrics is not None
        metrics.latency(integration["id"], "time_to_success", 40.0)
        metrics.latency(integration["id"], "time_to_success", 69.0)
        report = await pipe.metrics(integration["id"])
        r = await pipe.api.get(
            f"/v1/admin/integrations/{integration['id']}/metrics", params={"granularity": "minute"}
        )
        [latency] = [m for m in r.json()["metrics"] if m["metricName"] == "time_to_success"]
    assert latency["unit"] == "ms"
    average = report["time_to_success.time_to_success_average"]
    p95: Any = report["time_to_success.time_to_success_p95"]
    assert average == 54.5
    assert average <= p95 <= 69.0
