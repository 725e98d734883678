"""Benchmark phases of the file-loading destinations (`python -m bench.run --only loads`).

1. events/s into each stand-in: `eventrelay serve` (embedded) loading into S3 (moto in server
   mode) and into Redshift (the local PostgreSQL through the test double of
   tests/support/redshift_double.py: COPY reads the staged file from moto); N events are sent
   with /v1/batch and the clock stops when the metrics count them all delivered. Batches of
   10,000 events, as by default.
2. peak memory of one delivering process holding full buffers for 20 integrations: 20 S3
   integrations on one source, `batch_size` 10,000 and a 10-minute interval, 9,999 events of
   about 700 bytes each sent (so no buffer flushes): the process's peak RSS before and after.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import PYTHON, ROOT, free_port, peak_rss_mb, process, wait_http

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "bench-secret"
POSTGRES = os.environ.get(
    "EVENTRELAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _event(n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{n % 5000}",
        "messageId": f"{uuid.uuid4()}",
        "properties": {
            "order_id": f"O-{n}",
            "total": n % 1000,
            "currency": "EUR",
            "products": [{"sku": f"SKU-{n % 50}", "price": 9.99, "quantity": 1}],
        },
        "context": {
            "ip": "203.0.113.7",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
            "page": {"url": "https://shop.example.com/checkout/complete", "title": "Thanks"},
            "library": {"name": "analytics.js", "version": "5.2.0"},
        },
    }


async def _send(base: str, write_key: str, count: int, connections: int = 4) -> None:
    batches = [[_event(n) for n in range(i, min(i + 500, count))] for i in range(0, count, 500)]
    async with httpx.AsyncClient(base_url=base, auth=(write_key, ""), timeout=30) as client:

        async def worker(mine: list[list[dict[str, Any]]]) -> None:
            for batch in mine:
                r = await client.post("/v1/batch", json={"batch": batch})
                r.raise_for_status()

        await asyncio.gather(*(worker(batches[i::connections]) for i in range(connections)))


def _admin(base: str, data: Path) -> httpx.Client:
    token = (data / "owner-token").read_text().strip()
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _delivered(admin: httpx.Client, integration_id: str) -> int:
    report = admin.get(f"/v1/admin/integrations/{integration_id}/metrics").json()
    return int(next(m["total"] for m in report["metrics"] if m["metricName"] == "successes"))


def _serve(
    data: Path, env: dict[str, str], module: str = "eventrelay"
) -> tuple[list[str], dict[str, str]]:
    port = free_port()
    args = [PYTHON, "-m", module, "serve", "--port", str(port)]
    full = {
        "EVENTRELAY_DATA_DIR": str(data),
        "EVENTRELAY_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    return args, full


def _throughput(
    moto_url: str, type_: str, config: dict[str, Any], count: int, module: str = "eventrelay"
) -> float:
    import tempfile

    data = Path(tempfile.mkdtemp(prefix="eventrelay-bench-loads-"))
    urls = {"s3": moto_url, "redshift.s3": moto_url}
    env = {"EVENTRELAY_VENDOR_BASE_URLS": json.dumps(urls), "ER_TEST_MOTO_URL": moto_url}
    args, env = _serve(data, env, module)
    port = args[-1]
    base = f"http://127.0.0.1:{port}"
    with process(args, env):
        wait_http(base + "/healthz")
        admin = _admin(base, data)
        source = admin.post("/v1/admin/sources", json={"name": "bench"}).json()
        r = admin.post(
            "/v1/admin/integrations",
            json={
                "source_id": source["id"],
                "type": type_,
                "name": type_,
                "consent_categories": [],
                "config": config,
            },
        )
        r.raise_for_status()
        integration_id = r.json()["id"]
        started = time.monotonic()
        asyncio.run(_send(base, source["write_key"], count))
        while _delivered(admin, integration_id) < count:
            if time.monotonic() - started > 600:
                raise RuntimeError(f"{type_}: not all events delivered in 10 minutes")
            time.sleep(0.2)
        return count / (time.monotonic() - started)


def _memory(
    moto_url: str, bucket: str, integrations: int = 20, events: int = 9_999
) -> dict[str, float]:
    import tempfile

    data = Path(tempfile.mkdtemp(prefix="eventrelay-bench-mem-"))
    args, env = _serve(data, {"EVENTRELAY_VENDOR_BASE_URLS": json.dumps({"s3": moto_url})})
    base = f"http://127.0.0.1:{args[-1]}"
    with process(args, env) as proc:
        wait_http(base + "/healthz")
        admin = _admin(base, data)
        source = admin.post("/v1/admin/sources", json={"name": "bench"}).json()
        for n in range(integrations):
            admin.post(
                "/v1/admin/integrations",
                json={
                    "source_id": source["id"],
                    "type": "s3",
                    "name": f"lake {n}",
                    "consent_categories": [],
                    "config": {
                        "bucket": bucket,
                        "prefix": f"mem{n}/",
                        "region": "us-east-1",
                        "access_key_id": ACCESS_KEY,
                        "secret_access_key": SECRET_KEY,
                        "batch_size": 10_000,
                        "batch_interval_ms": 600_000,
                    },
                },
            ).raise_for_status()
        time.sleep(1.0)
        before = peak_rss_mb(proc.pid)
        asyncio.run(_send(base, source["write_key"], events))
        # Every event is queued 20 times; the buffers are full once memory stops growing.
        held, steady = peak_rss_mb(proc.pid), 0
        deadline = time.monotonic() + 120
        while steady < 6 and time.monotonic() < deadline:
            time.sleep(0.5)
            now = peak_rss_mb(proc.pid)
            steady = steady + 1 if now - held < 1.0 else 0
            held = max(held, now)
        return {
            "buffers_peak_rss_mb": round(held, 1),
            "buffers_idle_rss_mb": round(before, 1),
            "buffers_events_held": integrations * events,
        }


def phase_loads(count: int = 50_000) -> dict[str, Any]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    results: dict[str, Any] = {"loads_events": count}
    try:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=bucket)
        s3_config = {
            "bucket": bucket,
            "prefix": "events/",
            "region": "us-east-1",
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "batch_interval_ms": 1000,
        }
        results["s3_events_per_s"] = round(_throughput(moto_url, "s3", s3_config, count))
        database = _create_database()
        if database:
            rs_config = {
                "host": "127.0.0.1",
                "port": 5432,
                "database": database,
                "schema": "public",
                "table": "events",
                "user": "postgres",
                "password": "x",
                "sslmode": "disable",
                "s3_staging_bucket": bucket,
                "aws_access_key_id": ACCESS_KEY,
                "aws_secret_access_key": SECRET_KEY,
                "batch_interval_ms": 1000,
            }
            try:
                results["redshift_events_per_s"] = round(
                    _throughput(
                        moto_url, "redshift", rs_config, count, "tests.support.redshift_double"
                    )
                )
            finally:
                _drop_database(database)
        else:
            results["redshift_error"] = "PostgreSQL is not reachable"
        results.update(_memory(moto_url, bucket))
    finally:
        server.stop()
    return results


def _create_database() -> str | None:
    import asyncpg

    name = f"er_bench_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(POSTGRES)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    try:
        asyncio.run(create())
    except (OSError, asyncpg.PostgresError):
        return None
    return name


def _drop_database(name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def print_loads(results: dict[str, Any]) -> None:
    count = results.get("loads_events")
    if "s3_events_per_s" in results:
        print(f"into S3 (moto), {count:,} events      {results['s3_events_per_s']:>10,} events/s")
    if "redshift_events_per_s" in results:
        print(
            f"into Redshift (PostgreSQL double)  {results['redshift_events_per_s']:>10,} events/s"
        )
    if "buffers_peak_rss_mb" in results:
        print(
            f"20 full buffers ({results['buffers_events_held']:,} events held): peak RSS"
            f" {results['buffers_peak_rss_mb']} MB (idle {results['buffers_idle_rss_mb']} MB)"
        )
