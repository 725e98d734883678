"""Issue 9.4: text from vendors is made storable before it reaches the database (PostgreSQL
text and JSONB refuse NUL), and one row the database refuses never takes the rest of a flush
with it (other integrations' rows included). Both shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from eventrelay.delivery.failures import FailureLog
from eventrelay.settings import Settings
from eventrelay.store.db import Database
from eventrelay.store.metrics import MetricsRecorder
from eventrelay.store.tables import delivery_failures, delivery_metrics
from tests.support.pipeline import running_pipeline
from tests.support.sink import Sink


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url)
    yield database
    await database.close()


async def test_a_vendor_answer_with_nul_bytes_is_recorded(settings: Settings, sink: Sink) -> None:
    sink.default = 400
    sink.body = b'{"error":"bad \x00 value"}'
    async with running_pipeline(settings) as pipe:
        src = await pipe.api.make_source()
        integration = await pipe.api.make_integration(
            src["id"], type="webhook", config={"url": sink.url + "/hook"}
        )
        await pipe.track(src["write_key"], event="with\x00nul")

        async def recorded() -> list[dict[str, Any]]:
            return await pipe.failures(integration["id"])

        [failure] = await pipe.eventually(recorded)
        assert failure["response"]["body"] == '{"error":"bad \ufffd value"}'
        assert failure["reason"] == "http_400"
        current = await pipe.integration(integration["id"])
        assert "bad \ufffd value" in current["last_error_message"]
        assert (await pipe.metrics(integration["id"]))["discarded"] == 1


async def _failures(db: Database) -> dict[str, Any]:
    async with db.read() as conn:
        rows = (await conn.execute(select(delivery_failures))).mappings().all()
    return {row["integration_id"]: row for row in rows}


async def test_one_refused_failure_row_does_not_cost_the_others(db: Database) -> None:
    log = FailureLog(db)
    good = {"method": "POST", "url": "https://v.example/x", "headers": {}, "body": "{}"}
    # A row the database cannot store as it is (not JSON-serialisable here; any refusal, on
    # either database, takes the same path).
    log.record("int_bad", "drop", "http_400", "bad", 1, ["m1"], {"body": {1, 2}}, None)
    log.record("int_good", "retry", "http_503", "busy", 1, ["m2"], good, None)
    await log.flush()
    rows = await _failures(db)
    assert rows["int_good"]["request"] == good
    assert rows["int_bad"]["request"] is None  # stored without what it could not hold
    assert rows["int_bad"]["reason"] == "http_400"


async def test_text_for_the_database_is_made_storable(db: Database) -> None:
    log = FailureLog(db)
    long_reason = "vendor_" + "x" * 100
    log.record("int_1", "drop", long_reason, "a\x00b", 1, ["m\x001"], None, None)
    await log.flush()
    row = (await _failures(db))["int_1"]
    assert row["error"] == "a\ufffdb"
    assert row["message_ids"] == ["m\ufffd1"]
    assert row["reason"] == long_reason[:64]


async def test_one_refused_metric_does_not_cost_the_others(db: Database) -> None:
    metrics = MetricsRecorder(db)
    metrics.add("int_bad", "retried", 2**63)  # more than the column holds
    metrics.add("int_good", "retried", 3)
    metrics.add("int_good", "discarded", 1, key="vendor said \x00" + "y" * 80)
    await metrics.flush()
    async with db.read() as conn:
        rows = (await conn.execute(select(delivery_metrics))).mappings().all()
    stored = {(r["integration_id"], r["name"], r["key"]): r["value"] for r in rows}
    assert stored[("int_good", "retried", "")] == 3
    assert stored[("int_good", "discarded", ("vendor said \ufffd" + "y" * 80)[:64])] == 1
    assert not any(key[0] == "int_bad" for key in stored)
    await metrics.flush()  # the refused row was dropped, not kept to fail every flush
