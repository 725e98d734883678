"""BigQuery end to end: eventrelay (both shapes) loading into bqemulator behind the front of
tests/support/bigquery.py (token endpoint, insertId dedup, failures and holds), reached through
EVENTRELAY_VENDOR_BASE_URLS. Each test has a dataset of its own in one emulator per session.

What the emulator cannot show and the front imitates is said in tests/support/bigquery.py."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventrelay.settings import Settings
from tests.support.bigquery import PROJECT, BigQueryStandIn, bigquery_stand_in
from tests.support.process import eventrelay_process
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


@pytest.fixture(scope="session")
def bq_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryStandIn]:
    with bigquery_stand_in(tmp_path_factory.mktemp("bigquery")) as stand_in:
        yield stand_in


@pytest.fixture
def bq(bq_session: BigQueryStandIn) -> Iterator[BigQueryStandIn]:
    yield bq_session
    bq_session.front.reset()


def dataset(bq: BigQueryStandIn) -> str:
    name = f"t_{uuid.uuid4().hex[:10]}"
    bq.client().create_dataset(name)
    return name


def config(bq: BigQueryStandIn, ds: str, **extra: Any) -> dict[str, Any]:
    return {
        "project_id": PROJECT,
        "dataset_id": ds,
        "table_id": "events",
        "service_account_json": bq.account.json(),
        "batch_interval_ms": 300,
        **extra,
    }


def counts(bq: BigQueryStandIn, ds: str, table: str = "events") -> tuple[int, int]:
    """(rows, distinct message ids) in the table; (0, 0) before it exists."""
    try:
        (row,) = (
            bq.client()
            .query(f"SELECT COUNT(*), COUNT(DISTINCT message_id) FROM `{PROJECT}.{ds}.{table}`")
            .result()
        )
    except Exception:
        return 0, 0
    return int(row[0]), int(row[1])


def rows(bq: BigQueryStandIn, ds: str, table: str, columns: str = "*") -> list[dict[str, Any]]:
    result = bq.client().query(f"SELECT {columns} FROM `{PROJECT}.{ds}.{table}`").result()
    return [dict(r) for r in result]


# Both shapes and both methods: streaming on the embedded shape, load jobs on PostgreSQL + NATS.
@pytest.mark.parametrize(
    ("database_url", "method"),
    [("sqlite", "streaming"), ("postgres", "load_job")],
    indirect=["database_url"],
)
async def test_ten_thousand_events_land_once_each(
    settings: Settings, bq: BigQueryStandIn, method: str
) -> None:
    ds = dataset(bq)
    sent = events(10_000)
    cfg = config(bq, ds, insert_method=method, batch_size=5000)
    async with warehouse_run(settings, "bigquery", cfg, bq.base_urls) as run:
        await run.send(sent)
        await run.wait_for(lambda: counts(bq, ds)[1] == 10_000, timeout=90)
        assert counts(bq, ds) == (10_000, 10_000)
        found = {r["message_id"] for r in rows(bq, ds, "events", "message_id")}
        assert found == {e["messageId"] for e in sent}
        metrics = await run.metric("successes", 10_000)
        assert metrics["retried"] == 0
    (row,) = rows(bq, ds, "events", "properties, context, `timestamp`")[:1]
    assert row["properties"]["currency"] == "EUR"  # JSON columns keep the objects
    assert row["context"]["page"]["url"] == "https://example.com/"
    table = bq.client().get_table(f"{PROJECT}.{ds}.events")
    assert table.time_partitioning.field == "timestamp"
    assert {f.name: f.field_type for f in table.schema}["properties"] == "JSON"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("streaming", r"/tables/events/insertAll$"),
        ("load_job", r"^/bigquery/v2/projects/[^/]+/jobs$"),
    ],
)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_load_failing_twice_is_retried_and_lands_once(
    settings: Settings, bq: BigQueryStandIn, method: str, path: str
) -> None:
    """503 backendError twice on the step that commits (insertAll; the transaction's query
    job): retried with backoff, then each event is in the table once."""
    ds = dataset(bq)
    bq.front.fail("POST", path, times=2)
    sent = events(300)
    cfg = config(bq, ds, insert_method=method)
    async with warehouse_run(settings, "bigquery", cfg, bq.base_urls) as run:
        await run.send(sent)
        await run.wait_for(lambda: counts(bq, ds)[1] == 300, timeout=60)
        assert counts(bq, ds) == (300, 300)
        metrics = await run.metric("successes", 300)
        assert metrics["retried"] >= 300
        failures = await run.pipe.failures(run.integration["id"])
        # Each failed attempt is in the failure log with BigQuery's own message.
        assert [f["reason"] for f in failures][:2] == ["bigquery_backendError"] * 2
        assert "Retrying may solve the problem" in failures[0]["error"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("method", ["streaming", "load_job"])
async def test_schema_drift_adds_columns_and_fills_discards(
    settings: Settings, bq: BigQueryStandIn, method: str
) -> None:
    """Segment's layout: a new property becomes a column; a value of another type than its
    column's goes to <table>_discards with the reason, and the rest of its row is loaded."""
    ds = dataset(bq)
    cfg = config(bq, ds, insert_method=method, layout="segment")
    async with warehouse_run(settings, "bigquery", cfg, bq.base_urls) as run:
        await run.send(events(2, "first"))
        await run.wait_for(lambda: counts(bq, ds, "order_completed")[0] == 2)
        await run.send(events(1, "coupon", properties={"total": 3, "coupon": "SPRING"}))
        await run.wait_for(lambda: counts(bq, ds, "order_completed")[0] == 3)
        await run.send(events(1, "changed", properties={"total": "12.5"}))
        await run.wait_for(lambda: counts(bq, ds, "order_completed")[0] == 4)
        await run.wait_for(lambda: counts(bq, ds, "order_completed_discards")[0] == 1)
    table = bq.client().get_table(f"{PROJECT}.{ds}.order_completed")
    fields = {f.name: f.field_type for f in table.schema}
    assert fields["total"] in ("INTEGER", "INT64") and fields["coupon"] == "STRING"
    by_id = {r["message_id"]: r for r in rows(bq, ds, "order_completed")}
    assert by_id["coupon-0"]["coupon"] == "SPRING" and by_id["first-1"]["total"] == 1
    assert by_id["changed-0"]["total"] is None
    (discard,) = rows(bq, ds, "order_completed_discards")
    assert discard["message_id"] == "changed-0" and discard["column_name"] == "total"
    assert discard["column_value"] == "12.5"
    assert discard["reason"] == "type_mismatch: string into integer"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("account", "words"),
    [
        ("stranger", "invalid_grant: Invalid JWT Signature."),
        ("reader", "Access Denied: Table"),
    ],
)
async def test_refused_credentials_put_the_integration_in_error_with_googles_message(
    settings: Settings, bq: BigQueryStandIn, account: str, words: str
) -> None:
    ds = dataset(bq)
    key = getattr(bq, account).json()
    cfg = config(bq, ds, service_account_json=key)
    async with warehouse_run(settings, "bigquery", cfg, bq.base_urls) as run:
        await run.send(events(5))
        status = await run.wait_status("error")
        assert words in status["last_error_message"]
        assert (await run.metrics())["successes"] == 0  # kept in the queue, not dropped
    assert counts(bq, ds) == (0, 0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_admin_test_creates_and_drops_a_scratch_table_and_preview_shows_rows(
    settings: Settings, bq: BigQueryStandIn
) -> None:
    ds = dataset(bq)
    async with warehouse_run(settings, "bigquery", config(bq, ds), bq.base_urls) as run:
        r = await run.admin("test")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ok"] is True
        steps = [step["request"]["url"] for step in body["results"]]
        assert steps[0].startswith(f"create table {PROJECT}.{ds}.eventrelay_check_")
        assert steps[1].startswith("insertAll") and steps[2].startswith("drop table")
        assert [t.table_id for t in bq.client().list_tables(ds)] == []  # dropped again
        r = await run.admin("preview", event=events(1, "p")[0])
        assert r.status_code == 200, r.text
        (table,) = r.json()["tables"]
        assert table["table"] == "events" and table["columns"]["properties"] == "json"
        assert table["rows"][0]["message_id"] == "p-0" and r.json()["sent"] is False
    cfg = config(bq, ds, service_account_json=bq.stranger.json())
    async with warehouse_run(settings, "bigquery", cfg, bq.base_urls) as run:
        body = (await run.admin("test")).json()
        assert body["ok"] is False
        assert "Invalid JWT Signature." in body["results"][-1]["outcome"]["message"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "mode", "path", "after"),
    [
        # load job: killed after the staging load, while the MERGE transaction is held
        ("load_job", "dedup", r"^/bigquery/v2/projects/[^/]+/jobs$", False),
        # streaming: killed after the rows were streamed, before the ledger row
        ("streaming", "dedup", r"/tables/eventrelay_loads/insertAll$", False),
        # append (no MERGE to fall back on): killed after the transaction committed, before the
        # events were acknowledged; the ledger says so and nothing is loaded again
        ("load_job", "append", r"^/bigquery/v2/projects/[^/]+/jobs$", True),
    ],
)
async def test_sigkill_between_upload_and_load_still_lands_each_event_once(
    tmp_path: Path, bq: BigQueryStandIn, method: str, mode: str, path: str, after: bool
) -> None:
    ds = dataset(bq)
    sent = events(2000)
    cfg = config(bq, ds, insert_method=method, load_mode=mode)
    held = bq.front.hold("POST", path, after=after)
    with eventrelay_process(tmp_path, env=process_env(bq.base_urls)) as server:
        write_key = await configure(server.base_url, tmp_path, "bigquery", cfg)
        await send_to(server.base_url, write_key, sent)
        await until(lambda: held.arrived >= 1)
        server.stop(signal.SIGKILL)
    bq.front.abandon(held)
    assert counts(bq, ds)[0] in (0, 2000)  # staged or streamed, never committed twice
    with eventrelay_process(tmp_path, env=process_env(bq.base_urls)):
        # Every batch committed writes its ledger row last: wait for all of them.
        await until(lambda: _ledger(bq, ds) == 2000, timeout=60)
    assert counts(bq, ds) == (2000, 2000)


def _ledger(bq: BigQueryStandIn, ds: str) -> int:
    try:
        return sum(r["row_count"] for r in rows(bq, ds, "eventrelay_loads"))
    except Exception:
        return 0
