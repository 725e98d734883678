"""Snowflake end to end: eventrelay (both shapes) logging in with its key pair and loading into
fakesnow's server behind the front of tests/support/snowflake.py (JWT check, read-only user,
failures and holds), reached through EVENTRELAY_VENDOR_BASE_URLS. Each test has a database of
its own in one stand-in per session.

What fakesnow cannot show is said in src/eventrelay/loaders/snowflake.py."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from eventrelay.settings import Settings
from tests.support.process import eventrelay_process
from tests.support.snowflake import SnowflakeStandIn, Warehouse
from tests.support.warehouse import (
    configure,
    events,
    process_env,
    send_to,
    until,
    warehouse_run,
)

# On the xdist worker of the scale-out cluster tests, one after another: the stand-ins and the
# eventrelay processes these start take both cores in bursts, and the cluster tests time how
# fast configuration changes reach their processes.
pytestmark = pytest.mark.xdist_group("cluster")


def config(sf: SnowflakeStandIn, wh: Warehouse, **extra: Any) -> dict[str, Any]:
    return {
        "account": "xy12345.us-east-1",
        "database": wh.database,
        "schema": "PUBLIC",
        "table": "EVENTS",
        "user": "LOADER",
        "private_key": sf.loader.pem,
        "batch_interval_ms": 300,
        **extra,
    }


async def test_ten_thousand_events_land_once_each(
    settings: Settings, sf: SnowflakeStandIn, wh: Warehouse
) -> None:
    sent = events(10_000)
    async with warehouse_run(
        settings, "snowflake", config(sf, wh, batch_size=5000), sf.base_urls
    ) as run:
        await run.send(sent)
        await run.wait_for(lambda: wh.counts()[1] == 10_000, timeout=90)
        assert wh.counts() == (10_000, 10_000)
        found = {r[0] for r in wh.query(f'SELECT "MESSAGE_ID" FROM {wh.database}.PUBLIC."EVENTS"')}
        assert found == {e["messageId"] for e in sent}
        metrics = await run.metric("successes", 10_000)
        assert metrics["retried"] == 0
    (row,) = wh.query(
        f"SELECT PROPERTIES:currency::VARCHAR, CONTEXT:page:url::VARCHAR, TYPEOF(PROPERTIES)"
        f" FROM {wh.database}.PUBLIC.EVENTS WHERE MESSAGE_ID = '{sent[0]['messageId']}'"
    )
    assert row[0] == "EUR" and row[1] == "https://example.com/"
    columns = dict(
        wh.query(
            "SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS"
            f" WHERE TABLE_CATALOG = '{wh.database}' AND TABLE_NAME = 'EVENTS'"
        )
    )
    assert columns["PROPERTIES"] == "VARIANT" and columns["TIMESTAMP"] == "TIMESTAMP_TZ"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_load_failing_twice_is_retried_and_lands_once(
    settings: Settings, sf: SnowflakeStandIn, wh: Warehouse
) -> None:
    """COPY INTO times out twice (000625, a statement timeout): retried with backoff, then each
    event is in the table once."""
    sf.front.fail(r"^COPY INTO", times=2)
    sent = events(300)
    async with warehouse_run(settings, "snowflake", config(sf, wh), sf.base_urls) as run:
        await run.send(sent)
        await run.wait_for(lambda: wh.counts()[1] == 300, timeout=60)
        metrics = await run.metric("successes", 300)
        assert metrics["retried"] >= 300
        failures = await run.pipe.failures(run.integration["id"])
        assert [f["reason"] for f in failures][:2] == ["snowflake_000625"] * 2
        assert "statement or warehouse timeout" in failures[0]["error"]
    assert wh.counts() == (300, 300)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_schema_drift_adds_columns_and_fills_discards(
    settings: Settings, sf: SnowflakeStandIn, wh: Warehouse
) -> None:
    cfg = config(sf, wh, layout="segment")
    async with warehouse_run(settings, "snowflake", cfg, sf.base_urls) as run:
        await run.send(events(2, "first"))
        await run.wait_for(lambda: wh.counts("ORDER_COMPLETED")[0] == 2)
        await run.send(events(1, "coupon", properties={"total": 3, "coupon": "SPRING"}))
        await run.wait_for(lambda: wh.counts("ORDER_COMPLETED")[0] == 3)
        await run.send(events(1, "changed", properties={"total": "12.5"}))
        await run.wait_for(lambda: wh.counts("ORDER_COMPLETED_DISCARDS")[0] == 1)
        await run.wait_for(lambda: wh.counts("ORDER_COMPLETED")[0] == 4)
    table = f"{wh.database}.PUBLIC.ORDER_COMPLETED"
    by_id = {r[0]: r[1:] for r in wh.query(f"SELECT MESSAGE_ID, COUPON, TOTAL FROM {table}")}
    assert by_id["coupon-0"] == ("SPRING", 3) and by_id["first-1"] == (None, 1)
    assert by_id["changed-0"] == (None, None)
    (discard,) = wh.query(
        "SELECT MESSAGE_ID, COLUMN_NAME, COLUMN_VALUE, REASON"
        f" FROM {wh.database}.PUBLIC.ORDER_COMPLETED_DISCARDS"
    )
    assert discard == ("changed-0", "total", "12.5", "type_mismatch: string into integer")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("key", "words"),
    [("stranger", "JWT token is invalid."), ("reader", "Insufficient privileges")],
)
async def test_refused_credentials_put_the_integration_in_error_with_snowflakes_message(
    settings: Settings, sf: SnowflakeStandIn, wh: Warehouse, key: str, words: str
) -> None:
    pair = getattr(sf, key)
    cfg = config(sf, wh, user=pair.user, private_key=pair.pem)
    async with warehouse_run(settings, "snowflake", cfg, sf.base_urls) as run:
        await run.send(events(5))
        status = await run.wait_status("error")
        assert words in status["last_error_message"]
        assert (await run.metrics())["successes"] == 0  # kept in the queue, not dropped
    assert wh.counts() == (0, 0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_admin_test_creates_and_drops_a_scratch_table_and_preview_shows_rows(
    settings: Settings, sf: SnowflakeStandIn, wh: Warehouse
) -> None:
    async with warehouse_run(settings, "snowflake", config(sf, wh), sf.base_urls) as run:
        body = (await run.admin("test")).json()
        assert body["ok"] is True, body
        steps = [step["request"]["url"] for step in body["results"]]
        assert steps[0] == "login as LOADER (key pair)"
        assert steps[1].startswith(f"create table {wh.database}.PUBLIC.EVENTRELAY_CHECK_")
        assert steps[-1].startswith("drop table")
        r = await run.admin("preview", event=events(1, "p")[0])
        assert r.status_code == 200, r.text
        (table,) = r.json()["tables"]
        assert table["table"] == "events" and table["columns"]["properties"] == "json"
        assert table["rows"][0]["message_id"] == "p-0"
    cfg = config(sf, wh, private_key=sf.stranger.pem)
    async with warehouse_run(settings, "snowflake", cfg, sf.base_urls) as run:
        body = (await run.admin("test")).json()
        assert body["ok"] is False
        assert "JWT token is invalid." in body["results"][-1]["outcome"]["message"]
        assert "BEGIN PRIVATE KEY" not in str(body)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "statement", "after"),
    [
        # killed after PUT, while COPY INTO (the load) is held
        ("dedup", r"^COPY INTO", False),
        # append: killed after COMMIT, before the events were acknowledged
        ("append", r"^COMMIT", True),
    ],
)
async def test_sigkill_between_upload_and_load_still_lands_each_event_once(
    tmp_path: Path, sf: SnowflakeStandIn, wh: Warehouse, mode: str, statement: str, after: bool
) -> None:
    sent = events(2000)
    held = sf.front.hold(statement, after=after)
    with eventrelay_process(tmp_path, env=process_env(sf.base_urls)) as server:
        write_key = await configure(
            server.base_url, tmp_path, "snowflake", config(sf, wh, load_mode=mode)
        )
        await send_to(server.base_url, write_key, sent)
        await until(lambda: held.arrived >= 1)
        server.stop(signal.SIGKILL)
    sf.front.abandon(held)
    with eventrelay_process(tmp_path, env=process_env(sf.base_urls)):
        await until(lambda: wh.ledger() == 2000, timeout=60)
    assert wh.counts() == (2000, 2000)
