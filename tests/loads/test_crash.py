"""SIGKILL of the delivering process between upload and acknowledgement, in both shapes: the
embedded `eventrelay serve` (SQLite store and queue) and a scale-out worker (PostgreSQL, NATS
JetStream). The object was stored, its events were not acknowledged; after the restart (or on
another worker) the load journal finds the batch committed and acknowledges the events
instead of uploading them again: each message_id ends up exactly once in the bucket."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.loads.conftest import events
from tests.loads.test_redshift_e2e import rs_config
from tests.support.cluster import cluster
from tests.support.process import Server, eventrelay_process
from tests.support.redshift_double import MOTO_URL_ENV
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoS3, S3Proxy
from tests.support.services import POSTGRES_ADMIN_URL

# Real processes: serialised with the other cluster tests (two clusters at once starve 2 cores).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]


def _env(proxy: S3Proxy) -> dict[str, str]:
    return {
        "EVENTRELAY_VENDOR_BASE_URLS": json.dumps({"s3": proxy.url}),
        "EVENTRELAY_RETRY_BASE_SECONDS": "0.05",
        "EVENTRELAY_RETRY_CAP_SECONDS": "0.5",
        "EVENTRELAY_NATS_ACK_WAIT_SECONDS": "2",
    }


async def _setup(admin: httpx.AsyncClient, bucket: str) -> tuple[str, str]:
    source = (await admin.post("/v1/admin/sources", json={"name": "web"})).json()
    r = await admin.post(
        "/v1/admin/integrations",
        json={
            "source_id": source["id"],
            "type": "s3",
            "name": "lake",
            "consent_categories": [],
            "config": {
                "bucket": bucket,
                "prefix": "events/",
                "region": REGION,
                "access_key_id": ACCESS_KEY,
                "secret_access_key": SECRET_KEY,
                "batch_size": 1000,
                "batch_interval_ms": 300,
            },
        },
    )
    assert r.status_code == 201, r.text
    return str(source["write_key"]), str(r.json()["id"])


async def _send(base_url: str, write_key: str, batch: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(base_url=base_url, auth=(write_key, ""), timeout=10) as client:
        for start in range(0, len(batch), 500):
            r = await client.post("/v1/batch", json={"batch": batch[start : start + 500]})
            assert r.status_code == 200, r.text


async def _until(check: Callable[[], Any], timeout: float) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def _settled(admin: httpx.AsyncClient, integration_id: str, successes: int) -> Any:
    async def check() -> dict[str, Any] | None:
        report = (await admin.get(f"/v1/admin/integrations/{integration_id}/metrics")).json()
        totals = {m["metricName"]: m for m in report["metrics"]}
        done = report["pending"] == 0 and totals["successes"]["total"] >= successes
        return totals if done else None

    return await _until(check, 60)


@asynccontextmanager
async def _embedded(
    tmp_path: Path, env: dict[str, str], module: str = "eventrelay"
) -> AsyncIterator[Callable[[], Any]]:
    """Starts `eventrelay serve` on one data directory (again after a kill)."""
    servers: list[Any] = []

    def start() -> Server:
        context = eventrelay_process(tmp_path, env=env, module=module)
        server = context.__enter__()
        servers.append(context)
        return server

    try:
        yield start
    finally:
        for context in servers:
            context.__exit__(None, None, None)


def _admin(server: Server, token_dir: Path) -> httpx.AsyncClient:
    token = (token_dir / ".eventrelay" / "owner-token").read_text().strip()
    return httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


async def _check_bucket(moto: MotoS3, bucket: str, expected: int | None = None) -> None:
    """Each stored event once; `expected` of them (None: at least one)."""
    stored = await asyncio.to_thread(moto.events, bucket, "events/")
    ids = Counter(str(e["messageId"]) for e in stored)
    assert set(ids.values()) == {1}
    assert len(ids) == expected if expected is not None else ids


async def test_sigkill_between_upload_and_ack_embedded(
    tmp_path: Path, moto: MotoS3, s3proxy: S3Proxy
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    s3proxy.hang_after_store("PUT")
    async with _embedded(tmp_path, _env(s3proxy)) as start:
        server = start()
        async with _admin(server, tmp_path) as admin:
            write_key, integration_id = await _setup(admin, bucket)
        await _send(server.base_url, write_key, events(1000))
        await asyncio.wait_for(s3proxy.stored_then_hung.wait(), 30)
        server.stop(signal.SIGKILL)
        await _check_bucket(moto, bucket)  # a batch uploaded, never acknowledged

        server = start()
        await _send(server.base_url, write_key, events(500, start=1000))
        async with _admin(server, tmp_path) as admin:
            totals = await _settled(admin, integration_id, 1500)
        recovered = {b["metricName"]: b["value"] for b in totals["loads"]["breakdown"]}
        assert recovered["recovered"] > 0
    await _check_bucket(moto, bucket, 1500)


async def test_sigkill_of_a_scale_out_worker_between_upload_and_ack(
    tmp_path: Path, moto: MotoS3, s3proxy: S3Proxy
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    s3proxy.hang_after_store("PUT")
    async with cluster(tmp_path, _env(s3proxy), apis=1, workers=1) as c, c.admin() as admin:
        write_key, integration_id = await _setup(admin, bucket)
        await _send(c.apis[0].base_url, write_key, events(1000))
        await asyncio.wait_for(s3proxy.stored_then_hung.wait(), 30)
        c.kill_worker("w1")
        await _check_bucket(moto, bucket)
        await asyncio.to_thread(c.start_worker, "w2")  # JetStream redelivers to it
        await _send(c.apis[0].base_url, write_key, events(500, start=1000))
        await _settled(admin, integration_id, 1500)
    await _check_bucket(moto, bucket, 1500)


# --- Redshift: killed after staging the file, before COPY -----------------------------------

DOUBLE = "tests.support.redshift_double"


def _rs_env(proxy: S3Proxy, moto: MotoS3) -> dict[str, str]:
    env = _env(proxy)
    env["EVENTRELAY_VENDOR_BASE_URLS"] = json.dumps({"redshift.s3": proxy.url})
    env[MOTO_URL_ENV] = moto.url
    # The launcher lives in tests/: importable from the repository root.
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


async def _rs_setup(admin: httpx.AsyncClient, database: str, bucket: str) -> tuple[str, str]:
    source = (await admin.post("/v1/admin/sources", json={"name": "web"})).json()
    config = rs_config(database, bucket, batch_size=1000, batch_interval_ms=300)
    r = await admin.post(
        "/v1/admin/integrations",
        json={
            "source_id": source["id"],
            "type": "redshift",
            "name": "warehouse",
            "consent_categories": [],
            "config": config,
        },
    )
    assert r.status_code == 201, r.text
    return str(source["write_key"]), str(r.json()["id"])


async def _check_table(database: str, expected: int) -> None:
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + database
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT message_id, count(*) AS n FROM events GROUP BY 1")
    finally:
        await conn.close()
    assert len(rows) == expected and {r["n"] for r in rows} == {1}


async def test_redshift_sigkill_between_staging_and_copy_embedded(
    tmp_path: Path, moto: MotoS3, s3proxy: S3Proxy, warehouse: str
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    s3proxy.hang_after_store("PUT", path="/eventrelay-staging/")
    async with _embedded(tmp_path, _rs_env(s3proxy, moto), module=DOUBLE) as start:
        server = start()
        async with _admin(server, tmp_path) as admin:
            write_key, integration_id = await _rs_setup(admin, warehouse, bucket)
        await _send(server.base_url, write_key, events(1000))
        await asyncio.wait_for(s3proxy.stored_then_hung.wait(), 30)
        server.stop(signal.SIGKILL)  # the file is staged; COPY never ran

        server = start()
        await _send(server.base_url, write_key, events(500, start=1000))
        async with _admin(server, tmp_path) as admin:
            await _settled(admin, integration_id, 1500)
    await _check_table(warehouse, 1500)


async def test_redshift_sigkill_of_a_scale_out_worker_between_staging_and_copy(
    tmp_path: Path, moto: MotoS3, s3proxy: S3Proxy, warehouse: str
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    s3proxy.hang_after_store("PUT", path="/eventrelay-staging/")
    env = _rs_env(s3proxy, moto)
    async with (
        cluster(tmp_path, env, apis=1, workers=1, module=DOUBLE) as c,
        c.admin() as admin,
    ):
        write_key, integration_id = await _rs_setup(admin, warehouse, bucket)
        await _send(c.apis[0].base_url, write_key, events(1000))
        await asyncio.wait_for(s3proxy.stored_then_hung.wait(), 30)
        c.kill_worker("w1")
        await asyncio.to_thread(c.start_worker, "w2")
        await _send(c.apis[0].base_url, write_key, events(500, start=1000))
        await _settled(admin, integration_id, 1500)
    await _check_table(warehouse, 1500)
