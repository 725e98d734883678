"""The pieces of the file-loading framework, each real: batch naming, the flush policy and the
process budget, the warehouse writer (both layouts), schema reconciliation with discards, and
the load journal on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventrelay.delivery.load_buffer import Buffer, BufferBudget, Policy
from eventrelay.delivery.load_journal import LoadJournal
from eventrelay.destinations.base import EventRecord
from eventrelay.destinations.loading import (
    LoadingSettings,
    WarehouseSettings,
    WriteContext,
    batch_id,
)
from eventrelay.destinations.tables import (
    ColumnType,
    Dialect,
    TableRows,
    encode_ndjson,
    event_table,
    fit,
    identifier,
    reconcile,
)
from eventrelay.destinations.warehouse import WarehouseDestination
from eventrelay.store import load_batches
from eventrelay.store.db import Database
from eventrelay.store.load_batches import pack_ids, unpack_ids
from eventrelay.timeutil import utcnow

DIALECT = Dialect(max_identifier_bytes=127, max_string_bytes=64, max_json_bytes=256)
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


class _Settings(WarehouseSettings):
    table: str = "events"


class _Warehouse(WarehouseDestination):
    type = "test_warehouse"
    title = vendor = api = docs_url = "test"
    Settings = _Settings
    dialect = DIALECT
    extra = "test"

    def table_name(self, settings: Any) -> str:
        return str(settings.table)


def _event(n: int, **fields: Any) -> EventRecord:
    event = {
        "type": "track",
        "event": "Order Completed",
        "messageId": f"m{n}",
        "userId": f"u{n}",
        "timestamp": "2026-12-03T09:59:59.000Z",
        "receivedAt": "2026-12-03T10:00:00.000Z",
        "properties": {"total": 10, "currency": "EUR"},
        "context": {"ip": "203.0.113.1", "page": {"url": "https://example.com/"}},
        **fields,
    }
    return EventRecord.from_event(event)


def _write(events: list[EventRecord], **settings: Any) -> Any:
    ctx = WriteContext(NOW, "src_1", "int_1")
    return _Warehouse().write(events, _Settings(**settings), ctx)


# --- batch naming ----------------------------------------------------------------------------


@given(st.lists(st.text(min_size=1, max_size=40).filter(str.isprintable), min_size=1, max_size=50))
def test_batch_id_is_a_function_of_the_message_ids(ids: list[str]) -> None:
    assert batch_id(ids) == batch_id(list(ids))
    assert len(batch_id(ids)) == 26
    if len(set(ids)) > 1:
        assert batch_id(ids) != batch_id([*ids[1:], ids[0]]) or ids[1:] + ids[:1] == ids


@given(st.lists(st.text(min_size=1, max_size=36).filter(lambda s: s.isprintable()), max_size=200))
def test_journal_packs_message_ids_losslessly(ids: list[str]) -> None:
    assert unpack_ids(pack_ids(ids)) == ids


# --- flush policy and budget -----------------------------------------------------------------


class _D:
    def __init__(self, size: int) -> None:
        self.message_id = f"m{size}-{time.monotonic_ns()}"
        self.data = b"x" * size
        self.published_at = time.time()
        self.attempts = 1


def test_buffer_flushes_at_its_event_count_and_byte_size() -> None:
    budget = BufferBudget(10_000)
    by_count = Buffer(Policy(max_events=3, max_bytes=1000, interval=60), budget)
    by_count.add([_D(10), _D(10)])
    assert not by_count.due() and by_count.room() == 1
    by_count.add([_D(10)])
    assert by_count.due()
    by_bytes = Buffer(Policy(max_events=100, max_bytes=50, interval=60), budget)
    by_bytes.add([_D(49)])
    assert not by_bytes.due()
    by_bytes.add([_D(1)])
    assert by_bytes.due()
    taken, size = by_bytes.take()
    assert len(taken) == 2 and size == 50 and not by_bytes.due() and by_bytes.first_at is None


def test_buffer_flushes_once_its_interval_has_passed_since_the_first_event() -> None:
    buffer = Buffer(Policy(max_events=100, max_bytes=1000, interval=0.0), BufferBudget(10_000))
    assert not buffer.due()  # empty: nothing to flush however long it waited
    buffer.add([_D(1)])
    assert buffer.due() and buffer.wait() <= 0


def test_a_spent_process_budget_flushes_every_buffer_early_and_is_given_back() -> None:
    budget = BufferBudget(100)
    one = Buffer(Policy(1000, 10_000, 60), budget)
    two = Buffer(Policy(1000, 10_000, 60), budget)
    one.add([_D(60)])
    assert not one.due()
    two.add([_D(50)])
    assert budget.spent and one.due() and two.due()
    _, size = one.take()
    budget.give(size)
    assert not budget.spent and budget.used == 50


# --- warehouse writer ------------------------------------------------------------------------


def test_single_layout_has_core_columns_and_json_objects() -> None:
    written = _write([_event(1), _event(2), _event(1)])
    assert written.message_ids == ["m1", "m2"] and written.duplicates == [2]
    assert written.id == batch_id(["m1", "m2"])
    (table,) = written.tables
    assert table.table == "events"
    assert table.columns["properties"] is ColumnType.JSON
    assert table.columns["received_at"] is ColumnType.TIMESTAMP
    row = table.rows[0]
    assert row["message_id"] == "m1" and row["source_id"] == "src_1"
    assert row["properties"] == {"total": 10, "currency": "EUR"}
    assert row["loaded_at"] == "2026-12-03T10:00:00.000Z"


def test_segment_layout_splits_tables_and_flattens_properties() -> None:
    events = [
        _event(1),
        _event(2, event="tracks"),  # a name Segment reserves gets a suffix
        EventRecord.from_event(
            {
                "type": "identify",
                "messageId": "i1",
                "userId": "u1",
                "receivedAt": "2026-12-03T10:00:00.000Z",
                "traits": {"plan": "free", "address": {"city": "Oslo"}},
            }
        ),
        EventRecord.from_event(
            {
                "type": "identify",
                "messageId": "i2",
                "userId": "u1",
                "receivedAt": "2026-12-03T10:00:01.000Z",
                "traits": {"plan": "pro", "event": "clash"},
            }
        ),
    ]
    tables = {t.table: t for t in _write(events, layout="segment").tables}
    assert set(tables) == {"tracks", "order_completed", "tracks_event", "identifies", "users"}
    order = tables["order_completed"]
    assert order.columns["total"] is ColumnType.INTEGER
    assert order.columns["context_page_url"] is ColumnType.STRING
    assert order.rows[0]["currency"] == "EUR"
    assert "total" not in tables["tracks"].columns
    # users: one row per user per batch, the latest identify wins; a trait named like a core
    # column is kept under a prefix rather than overwriting it.
    (user,) = tables["users"].rows
    assert user["id"] == "u1" and user["plan"] == "pro" and tables["users"].upsert
    assert tables["users"].message_ids == ["i2"]
    assert tables["identifies"].rows[1]["traits_event"] == "clash"
    assert tables["identifies"].rows[0]["address_city"] == "Oslo"


def test_names_are_lower_snake_case_within_the_warehouse_limit() -> None:
    assert identifier("Order Completed!", 127) == "order_completed"
    assert identifier("2fa Enabled", 127) == "_2fa_enabled"
    assert identifier("ümlaut", 127) == "mlaut"
    assert len(event_table("x" * 300, DIALECT)) <= 127 - len("_discards")


# --- schema reconciliation -------------------------------------------------------------------


def _table(rows: list[dict[str, Any]], columns: dict[str, ColumnType]) -> TableRows:
    return TableRows("t", columns, rows, [f"m{i}" for i in range(len(rows))])


def test_a_new_table_is_created_with_the_batch_columns() -> None:
    out = reconcile(_table([{"a": 1}], {"a": ColumnType.INTEGER}), None, DIALECT, "now")
    assert out.create and out.add_columns == {"a": ColumnType.INTEGER} and not out.discards


def test_a_new_property_adds_a_column_and_a_type_change_fills_discards() -> None:
    existing = {"message_id": ColumnType.STRING, "amount": ColumnType.INTEGER}
    batch = _table(
        [
            {"message_id": "m0", "amount": 3, "coupon": "X"},
            {"message_id": "m1", "amount": "12.5", "coupon": "Y"},
        ],
        {
            "message_id": ColumnType.STRING,
            "amount": ColumnType.INTEGER,
            "coupon": ColumnType.STRING,
        },
    )
    out = reconcile(batch, existing, DIALECT, "2026-12-03T10:00:00.000Z")
    assert not out.create
    assert out.add_columns == {"coupon": ColumnType.STRING}
    assert out.table.rows == [
        {"message_id": "m0", "amount": 3, "coupon": "X"},
        {"message_id": "m1", "coupon": "Y"},
    ]
    (discard,) = out.discards
    assert discard["message_id"] == "m1" and discard["column_name"] == "amount"
    assert discard["column_value"] == "12.5" and discard["reason"].startswith("type_mismatch")


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
        max_leaves=10,
    )
)
def test_any_value_either_fits_a_string_or_json_column_or_is_discarded_as_too_long(
    value: Any,
) -> None:
    for column, limit in ((ColumnType.STRING, 64), (ColumnType.JSON, 256)):
        stored, reason = fit(value, column, DIALECT)
        if reason is None:
            if column is ColumnType.STRING and stored is not None:
                assert isinstance(stored, str) and len(stored.encode()) <= limit
        else:
            assert reason.startswith("too_long") and stored is None


def test_numbers_and_timestamps_fit_only_their_own_kind() -> None:
    assert fit(3.0, ColumnType.INTEGER, DIALECT) == (3, None)
    assert fit(True, ColumnType.INTEGER, DIALECT)[1] == "type_mismatch: boolean into integer"
    assert fit(2**64, ColumnType.INTEGER, DIALECT)[1] == "out_of_range: integer beyond 64 bits"
    assert fit(3, ColumnType.FLOAT, DIALECT) == (3.0, None)
    assert fit("2026-12-03T10:00:00+01:00", ColumnType.TIMESTAMP, DIALECT) == (
        "2026-12-03T09:00:00.000Z",
        None,
    )
    assert (
        fit("yesterday", ColumnType.TIMESTAMP, DIALECT)[1] == "type_mismatch: string into timestamp"
    )


def test_rows_encode_as_newline_delimited_json() -> None:
    assert encode_ndjson([{"a": 1}, {"b": "x"}]) == b'{"a":1}\n{"b":"x"}\n'


def test_flush_policy_fields_are_shared_and_bounded() -> None:
    settings = LoadingSettings()
    assert (settings.batch_size, settings.batch_interval_ms, settings.batch_max_bytes) == (
        10_000,
        60_000,
        64 * 1024 * 1024,
    )
    with pytest.raises(ValueError):
        LoadingSettings(batch_size=50_001)


# --- load journal ----------------------------------------------------------------------------


async def test_the_journal_matches_redelivered_events_to_their_staged_batch(
    database_url: str,
) -> None:
    from eventrelay.settings import Settings

    db = Database(Settings(database_url=database_url).resolved_database_url)
    try:
        crashed = LoadJournal(db, "int_a", keep_for=3600)
        written = _write([_event(1), _event(2), _event(3)])
        await crashed.record(written, ["s3://bucket/key"])
        # Another worker (or this one after a restart) holds two of its events and a new one.
        worker = LoadJournal(db, "int_a", keep_for=3600)
        ((batch, ids),) = await worker.matches(["m2", "m3", "m9"])
        assert batch.batch_id == written.id and batch.refs == ["s3://bucket/key"]
        assert ids == {"m2", "m3"} and batch.event_count == 3
        assert await LoadJournal(db, "int_b", keep_for=3600).matches(["m2"]) == []
        await worker.forget(written.id)
        assert await worker.matches(["m2", "m3"]) == []
        # Entries older than the queue's max event age are pruned.
        await crashed.record(written, [])
        async with db.transaction() as conn:
            assert await load_batches.prune(conn, utcnow() - timedelta(hours=1)) == 0
            assert await load_batches.prune(conn, utcnow() + timedelta(seconds=1)) == 1
    finally:
        await db.close()


async def test_a_worker_remembers_its_last_committed_batches_for_late_redeliveries(
    database_url: str,
) -> None:
    """An event redelivered after its lease lapsed while its batch loaded is recognised."""
    from eventrelay.settings import Settings

    db = Database(Settings(database_url=database_url).resolved_database_url)
    try:
        journal = LoadJournal(db, "int_c", keep_for=3600)
        batches = [_write([_event(n)]) for n in range(3)]
        for written in batches:
            await journal.record(written, [])
        await journal.forget(batches[0].id)  # failed before any commit: not remembered
        assert journal.recently_committed(["m0"]) == set()
        await journal.forget(batches[1].id, committed=True)
        await journal.forget(batches[2].id, committed=True)
        assert journal.recently_committed(["m0", "m1", "m2", "m9"]) == {"m1", "m2"}
        assert await journal.matches(["m1", "m2"]) == []  # gone from the database
    finally:
        await db.close()
