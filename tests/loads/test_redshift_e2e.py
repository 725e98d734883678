"""Redshift end to end, in both shapes: /v1/batch -> eventrelay -> staged gzip NDJSON in moto ->
COPY (the PostgreSQL double, tests/support/redshift_double.py) -> delete+insert into the target.
The local PostgreSQL plays the Redshift database; every statement but COPY runs for real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from eventrelay.destinations.base import EventRecord
from eventrelay.destinations.loading import WriteContext
from eventrelay.destinations.redshift import destination as redshift
from eventrelay.loaders import LoaderContext, loader_for
from eventrelay.settings import Settings
from tests.loads.conftest import events, load_run
from tests.support.redshift_double import Double, install, uninstall
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, MotoS3, S3Proxy
from tests.support.services import POSTGRES_ADMIN_URL


def rs_config(database: str, bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": 5432,
        "database": database,
        "schema": "public",
        "table": "events",
        "user": "postgres",
        "password": "not-checked-by-trust-auth",
        "s3_staging_bucket": bucket,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "sslmode": "disable",
        "batch_interval_ms": 500,
        **extra,
    }


@pytest.fixture
def double(moto: MotoS3) -> Iterator[Double]:
    yield install(moto.url)
    uninstall()


@pytest.fixture
async def wh(warehouse: str) -> AsyncIterator[asyncpg.Connection]:
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + warehouse
    conn = await asyncpg.connect(url)
    yield conn
    await conn.close()


async def _counts(wh: asyncpg.Connection, table: str = "events") -> dict[str, int]:
    try:
        rows = await wh.fetch(f"SELECT message_id, count(*) AS n FROM {table} GROUP BY 1")
    except asyncpg.UndefinedTableError:
        return {}
    return {r["message_id"]: r["n"] for r in rows}


async def test_ten_thousand_events_are_loaded_once_each(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy, double: Double, warehouse: str, wh: Any
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    sent = events(10_000)
    urls = {"redshift.s3": s3proxy.url}
    async with load_run(settings, "redshift", rs_config(warehouse, bucket), urls) as run:
        await run.send(sent)

        async def loaded() -> dict[str, int] | None:
            counts = await _counts(wh)
            return counts if len(counts) == len(sent) else None

        counts = await run.pipe.eventually(loaded, timeout=60)
        assert set(counts.values()) == {1}
        row = await wh.fetchrow("SELECT * FROM events WHERE message_id = 'msg-000042'")
        assert row["type"] == "track" and row["event"] == "Order Completed"
        assert row["user_id"] == "u42" and row["source_id"] == run.source["id"]
        assert row["received_at"] is not None and row["loaded_at"] is not None
        assert '"order_id": "O-42"' in row["properties"]
        assert double.copies and all(c.table.startswith('"stage_') for c in double.copies)
        ledger = await wh.fetchval("SELECT count(*) FROM _eventrelay_loads")
        assert ledger == len(double.copies)
        # Staged files are removed once their load committed.
        assert await asyncio.to_thread(moto.keys, bucket, "eventrelay-staging/") == []


async def test_a_copy_failing_twice_is_retried_and_loads_once(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy, double: Double, warehouse: str, wh: Any
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    double.fail_copies = 2
    urls = {"redshift.s3": s3proxy.url}
    async with load_run(settings, "redshift", rs_config(warehouse, bucket), urls) as run:
        await run.send(events(1000))

        async def done() -> dict[str, Any] | None:
            m = await run.metrics()
            return m if m.get("successes.successes_after_retry") == 1000 else None

        await run.pipe.eventually(done, timeout=30)
        counts = await _counts(wh)
        assert len(counts) == 1000 and set(counts.values()) == {1}
        failures = await run.pipe.failures(run.id)
        assert [f["reason"] for f in failures] == ["redshift_40001", "redshift_40001"]
        assert "Serializable isolation violation" in failures[0]["error"]
        # The same staged file (same batch id) every time.
        assert len({c.key for c in double.copies}) == 1 and len(double.copies) == 3


async def test_schema_drift_adds_columns_and_fills_discards(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy, double: Double, warehouse: str, wh: Any
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    config = rs_config(warehouse, bucket, layout="segment")
    async with load_run(settings, "redshift", config, {"redshift.s3": s3proxy.url}) as run:
        await run.send(events(3))
        await run.pipe.eventually(lambda: _has(wh, "order_completed", 3), timeout=30)
        # A new property (coupon) and a type change (total: integer -> text).
        drift = events(2, start=100)
        for event in drift:
            event["properties"].update({"total": "12.5", "coupon": "WINTER"})
        await run.send(drift)
        await run.pipe.eventually(lambda: _has(wh, "order_completed", 5), timeout=30)
        columns = {
            r["column_name"]: r["data_type"]
            for r in await wh.fetch(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = 'order_completed'"
            )
        }
        assert columns["total"] == "bigint" and columns["coupon"] == "character varying"
        rows = await wh.fetch("SELECT * FROM order_completed_discards ORDER BY message_id")
        assert [(r["message_id"], r["column_name"], r["column_value"]) for r in rows] == [
            ("msg-000100", "total", "12.5"),
            ("msg-000101", "total", "12.5"),
        ]
        assert rows[0]["reason"] == "type_mismatch: string into integer"
        new = await wh.fetchrow("SELECT * FROM order_completed WHERE message_id = 'msg-000100'")
        assert new["coupon"] == "WINTER" and new["total"] is None
        assert len(await _counts(wh, "tracks")) == 5

        async def discarded() -> bool:
            return bool((await run.metrics()).get("loads.values_discarded") == 2)

        await run.pipe.eventually(discarded, timeout=10)


async def _has(wh: Any, table: str, count: int) -> bool:
    return len(await _counts(wh, table)) == count


async def test_refused_credentials_put_the_integration_in_error(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy, double: Double, warehouse: str
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    config = rs_config(warehouse, bucket, user="no_such_loader")
    async with load_run(settings, "redshift", config, {"redshift.s3": s3proxy.url}) as run:
        await run.send(events(5))
        current = await run.wait_status("error")
        assert 'role "no_such_loader" does not exist' in current["last_error_message"]
        test = (await run.post("test")).json()
        assert test["ok"] is False
        assert "no_such_loader" in test["results"][0]["outcome"]["message"]


async def test_admin_test_creates_and_drops_a_scratch_table_and_object(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy, double: Double, warehouse: str, wh: Any
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    config = rs_config(warehouse, bucket)
    async with load_run(settings, "redshift", config, {"redshift.s3": s3proxy.url}) as run:
        body = (await run.post("test")).json()
        assert body["ok"] is True, body
        steps = [r["request"]["url"] for r in body["results"]]
        assert steps[1].startswith('CREATE TABLE IF NOT EXISTS "public"."_eventrelay_test"')
        assert steps[2].startswith("DROP TABLE") and steps[3].startswith("PUT s3://")
        assert await wh.fetchval("SELECT to_regclass('public._eventrelay_test')") is None
        preview = (await run.post("preview", json={"batch": events(2)})).json()
        (table,) = preview["tables"]
        assert table["table"] == "events" and table["columns"]["properties"] == "json"
        assert [r["message_id"] for r in table["rows"]] == ["msg-000000", "msg-000001"]


@pytest.mark.parametrize("mode, copies", [("dedup", 1), ("append", 2)])
async def test_dedup_replaces_a_message_id_already_loaded_and_append_keeps_both(
    mode: str, copies: int, moto: MotoS3, s3proxy: S3Proxy, double: Double, warehouse: str, wh: Any
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    settings = redshift.Settings.model_validate(rs_config(warehouse, bucket, load_mode=mode))
    loader = loader_for(
        redshift, settings, LoaderContext("int_x", "src_x", {"redshift.s3": s3proxy.url})
    )
    ctx = WriteContext(datetime.now(UTC), "src_x", "int_x")

    def batch(*ids: int) -> Any:
        records = [
            EventRecord.from_event(
                {**events(1, start=n)[0], "receivedAt": datetime.now(UTC).isoformat()}
            )
            for n in ids
        ]
        return redshift.write(records, settings, ctx)

    try:
        first, second = batch(1, 2), batch(2, 3)  # message 2 arrives twice (a client resent it)
        await loader.load(first)
        report = await loader.load(second)
        assert report.rows == 2
        again = await loader.load(second)  # a replay of a committed batch changes nothing
        assert again.already_committed
        assert await loader.committed(second.id, [])
    finally:
        await loader.close()
    counts = await _counts(wh)
    assert counts == {"msg-000001": 1, "msg-000002": copies, "msg-000003": 1}


async def test_a_row_the_warehouse_refuses_is_discarded_with_its_reason_and_the_rest_loaded(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy, double: Double, warehouse: str, wh: Any
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    urls = {"redshift.s3": s3proxy.url}
    async with load_run(settings, "redshift", rs_config(warehouse, bucket), urls) as run:
        sent = events(3)
        sent[1]["properties"]["note"] = "a\u0000b"  # JSON the warehouse's JSON type refuses
        await run.send(sent)

        async def discarded() -> dict[str, Any] | None:
            m = await run.metrics()
            return m if m.get("discarded") == 1 and m.get("successes") == 2 else None

        await run.pipe.eventually(discarded, timeout=30)
        assert set(await _counts(wh)) == {"msg-000000", "msg-000002"}
        (failure,) = await run.pipe.failures(run.id)
        assert failure["outcome"] == "drop" and failure["reason"] == "copy_refused"
        assert failure["message_ids"] == ["msg-000001"]
        assert "line 2, column properties" in failure["error"]
