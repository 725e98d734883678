"""Warehouse loads (`make bench`, phase `warehouses`): events/s from ingest into each warehouse
stand-in, through a real `eventrelay serve` (embedded shape) pointed at it with
EVENTRELAY_VENDOR_BASE_URLS, the same stand-ins the tests use (tests/support/bigquery.py,
tests/support/snowflake.py).

For each target (BigQuery streaming insert, BigQuery load job + MERGE, Snowflake PUT + COPY +
insert) a fresh server gets one integration (batch_size 10,000, batch_interval_ms 1,000), the
bench posts `events` events as fast as it can (500 per /v1/batch request) and times until every
message_id is in the table. The figure is bounded by the stand-in (bqemulator inserts
streamed rows one by one; fakesnow runs DuckDB behind an HTTP front, both on the same cores as
eventrelay): it measures eventrelay's pipeline against these stand-ins, not the warehouses.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import PYTHON, free_port, peak_rss_mb, process, wait_http

BATCH = 500


def _serve(data: Path, base_urls: dict[str, str]) -> Any:
    port = free_port()
    env = {
        "EVENTRELAY_DATA_DIR": str(data),
        "EVENTRELAY_LOG_LEVEL": "WARNING",
        "EVENTRELAY_VENDOR_BASE_URLS": json.dumps(base_urls),
    }
    return port, process([PYTHON, "-m", "eventrelay", "serve", "--port", str(port)], env)


def _run(
    name: str,
    type_: str,
    config: dict[str, Any],
    base_urls: dict[str, str],
    count: Callable[[], int],
    events: int,
) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="eventrelay-bench-wh-"))
    port, server = _serve(data, base_urls)
    with server as proc:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz")
        token = (data / "owner-token").read_text().strip()
        admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        source = admin.post(
            "/v1/admin/sources", json={"name": "bench", "consent_default": "allow"}
        ).json()
        body = {"source_id": source["id"], "type": type_, "name": name, "config": config}
        admin.post("/v1/admin/integrations", json=body).raise_for_status()
        tag = uuid.uuid4().hex[:8]
        started = time.monotonic()
        with httpx.Client(base_url=base, auth=(source["write_key"], ""), timeout=60) as client:
            for start in range(0, events, BATCH):
                batch = [
                    {
                        "type": "track",
                        "event": "Order Completed",
                        "userId": f"u{n % 97}",
                        "messageId": f"{tag}-{n}",
                        "properties": {"order_id": f"O-{n}", "total": n, "currency": "EUR"},
                    }
                    for n in range(start, min(start + BATCH, events))
                ]
                client.post("/v1/batch", json={"batch": batch}).raise_for_status()
        ingested = time.monotonic() - started
        deadline = started + 600
        while count() < events:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: not all events loaded in 10 minutes")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        rss = peak_rss_mb(proc.pid)
    return {
        f"warehouse_{name}_events_per_s": round(events / elapsed),
        f"warehouse_{name}_ingest_s": round(ingested, 2),
        f"warehouse_{name}_peak_rss_mb": round(rss),
    }


def phase_warehouses(events: int) -> dict[str, Any]:
    from tests.support.bigquery import PROJECT, bigquery_stand_in, emulator_available
    from tests.support.snowflake import snowflake_stand_in

    results: dict[str, Any] = {"warehouse_events": events}
    root = Path(tempfile.mkdtemp(prefix="eventrelay-bench-bq-"))
    if not emulator_available():
        results["warehouse_bigquery_error"] = "bqemulator missing: make install-test"
    else:
        with bigquery_stand_in(root) as bq:
            client = bq.client()
            for method in ("streaming", "load_job"):
                dataset = f"bench_{uuid.uuid4().hex[:8]}"
                client.create_dataset(dataset)

                def loaded(dataset: str = dataset) -> int:
                    try:
                        sql = f"SELECT COUNT(DISTINCT message_id) FROM `{PROJECT}.{dataset}.events`"
                        return int(next(iter(client.query(sql).result()))[0])
                    except Exception:
                        return 0

                config = {
                    "project_id": PROJECT,
                    "dataset_id": dataset,
                    "table_id": "events",
                    "service_account_json": bq.account.json(),
                    "insert_method": method,
                    "batch_interval_ms": 1000,
                }
                results.update(
                    _run(f"bigquery_{method}", "bigquery", config, bq.base_urls, loaded, events)
                )
    with snowflake_stand_in() as sf:
        database = f"BENCH_{uuid.uuid4().hex[:8]}".upper()
        conn = sf.connect(database)
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.PUBLIC")

        def loaded_sf() -> int:
            try:
                cur.execute(f"SELECT COUNT(DISTINCT MESSAGE_ID) FROM {database}.PUBLIC.EVENTS")
                row = cur.fetchone()
                return int(row[0]) if row else 0
            except Exception:
                return 0

        config = {
            "account": "bench.us-east-1",
            "database": database,
            "schema": "PUBLIC",
            "table": "EVENTS",
            "user": sf.loader.user,
            "private_key": sf.loader.pem,
            "batch_interval_ms": 1000,
        }
        results.update(_run("snowflake", "snowflake", config, sf.base_urls, loaded_sf, events))
        conn.close()
    return results


def print_report(results: dict[str, Any]) -> None:
    for name in ("bigquery_streaming", "bigquery_load_job", "snowflake"):
        rate = results.get(f"warehouse_{name}_events_per_s")
        if rate is not None:
            print(
                f"into {name:<24}{rate:>10,} events/s"
                f"  (peak RSS {results[f'warehouse_{name}_peak_rss_mb']} MB)"
            )
    if "warehouse_bigquery_error" in results:
        print(f"bigquery: {results['warehouse_bigquery_error']}")
