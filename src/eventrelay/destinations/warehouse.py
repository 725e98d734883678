"""The writer every warehouse type shares: a batch of events -> rows per table (`Written`).

Each warehouse module (redshift.py, bigquery.py, snowflake.py) subclasses `WarehouseDestination`
and declares its `dialect` (identifier and value limits) and its target table name; the
loader in `eventrelay.loaders` reconciles these rows with the warehouse's columns
(`tables.reconcile`) and loads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from eventrelay.destinations.base import EventRecord, VendorSettings
from eventrelay.destinations.loading import (
    FileDestination,
    WarehouseSettings,
    WriteContext,
    Written,
    batch_id,
    unique_events,
)
from eventrelay.destinations.tables import (
    _SEGMENT_TABLES,
    CORE_COLUMNS,
    SINGLE_COLUMNS,
    Dialect,
    Row,
    TableRows,
    core_row,
    event_table,
    flatten,
    identifier,
    infer_type,
    iso,
    single_row,
)


class WarehouseDestination(FileDestination):
    dialect: ClassVar[Dialect]
    category = "warehouse"

    def table_name(self, settings: VendorSettings) -> str:
        """The single-layout table (the config's `table`), as the warehouse names it."""
        raise NotImplementedError

    def write(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: WriteContext
    ) -> Written:
        assert isinstance(settings, WarehouseSettings)
        first, repeats = unique_events(events)
        ids = [events[i].message_id for i in first]
        loaded_at = iso(ctx.now)
        if settings.layout == "single":
            table = TableRows(self.table_name(settings), dict(SINGLE_COLUMNS))
            for index in first:
                table.rows.append(single_row(events[index].data, ctx.source_id, loaded_at))
                table.message_ids.append(events[index].message_id)
            tables = [table]
        else:
            tables = SegmentLayout(self.dialect).tables(
                [events[i] for i in first], ctx.source_id, loaded_at
            )
        return Written(batch_id(ids), ids, first, tables=tables, duplicates=repeats)


class SegmentLayout:
    """Segment's warehouse tables for one batch."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._tables: dict[str, TableRows] = {}
        self._positions: dict[tuple[str, Any], int] = {}  # upsert tables: key -> row

    def tables(
        self, events: Sequence[EventRecord], source_id: str, loaded_at: str
    ) -> list[TableRows]:
        for record in events:
            event = record.data
            kind = event.get("type", "")
            base = core_row(event, source_id, loaded_at)
            self._flat(base, "context", event.get("context"))
            table = _SEGMENT_TABLES.get(kind)
            if table is None:
                continue
            row = dict(base)
            if kind == "track":
                self._add("tracks", row, record.message_id)
                detail = dict(base)
                self._flat(detail, "", event.get("properties"), "properties")
                name = event_table(str(event.get("event", "")), self.dialect)
                self._add(name, detail, record.message_id)
                continue
            if kind == "identify":
                self._flat(row, "", event.get("traits"), "traits")
                if event.get("userId"):
                    user = {"id": event["userId"], "received_at": base["received_at"]}
                    user["loaded_at"] = loaded_at
                    self._flat(user, "", event.get("traits"), "traits")
                    self._add("users", user, record.message_id, key="id")
            elif kind in ("page", "screen"):
                row["name"] = event.get("name")
                row["category"] = event.get("category")
                self._flat(row, "", event.get("properties"), "properties")
            elif kind == "group":
                row["group_id"] = event.get("groupId")
                self._flat(row, "", event.get("traits"), "traits")
            elif kind == "alias":
                row["previous_id"] = event.get("previousId")
            self._add(table, row, record.message_id)
        return list(self._tables.values())

    def _flat(self, row: Row, prefix: str, value: Any, clash_prefix: str = "") -> None:
        """Flattened `value` into `row`; a name clashing with a core column gets
        `clash_prefix_` rather than overwriting it (Segment drops such properties)."""
        if not isinstance(value, Mapping):
            return
        flat: dict[str, Any] = {}
        flatten(prefix, value, flat)
        limit = self.dialect.max_identifier_bytes
        for key, item in flat.items():
            name = identifier(key, limit)
            if name in row and (name in CORE_COLUMNS or name in ("id", "name", "category")):
                name = identifier(f"{clash_prefix or prefix}_{key}", limit)
            row[name] = item

    def _add(self, table: str, row: Row, message_id: str, key: str = "message_id") -> None:
        rows = self._tables.get(table)
        if rows is None:
            rows = self._tables[table] = TableRows(table, {}, key=key, upsert=key != "message_id")
        for name, value in row.items():
            if name not in rows.columns:
                kind = CORE_COLUMNS.get(name) or infer_type(value)
                if kind is not None:
                    rows.columns[name] = kind
        if rows.upsert:
            # One row per key and batch: the latest identify wins.
            position = self._positions.get((table, row[key]))
            if position is not None:
                rows.rows[position] = row
                rows.message_ids[position] = message_id
                return
            self._positions[(table, row[key])] = len(rows.rows)
        rows.rows.append(row)
        rows.message_ids.append(message_id)
