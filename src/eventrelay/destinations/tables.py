"""Warehouse rows from Segment-spec events, and the schema rules every warehouse shares.

Two layouts:
- `single` (default): one table (the config's `table`) with the core columns below and
  `properties`, `traits`, `context` in the warehouse's JSON type.
- `segment`: Segment's warehouse schema (segment.com/docs/connections/storage/warehouses/schema/):
  `tracks`, `identifies`, `users`, `pages`, `screens`, `groups`, `aliases`, and one table per
  track event; properties and traits flattened into `a_b` columns, context into `context_*`.
  A column's type is set by the first value seen (as Segment does); arrays stay JSON.

A value that cannot fit its column (a string in a number column, text longer than the
warehouse allows) does not fail the batch: the row is loaded without it and the value goes to
`<table>_discards` with the reason (`discards_rows`).

All of it is pure: the loader reads the warehouse's current columns and calls `reconcile`.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

Row = dict[str, Any]


class ColumnType(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Dialect:
    """What a warehouse allows (each warehouse module declares its own, with sources)."""

    max_identifier_bytes: int
    max_string_bytes: int
    max_json_bytes: int
    max_table_name_bytes: int = 0  # 0: as max_identifier_bytes


@dataclass(slots=True)
class TableRows:
    """Rows bound for one table, with the columns this batch needs (in order)."""

    table: str
    columns: dict[str, ColumnType]
    rows: list[Row] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)  # one per row, for load errors
    # Dedup key; `upsert` tables (users) replace by key whatever the load mode.
    key: str = "message_id"
    upsert: bool = False
    discards_for: str | None = None  # set on a `<table>_discards` table


def dumps(value: Any) -> bytes:
    """JSON bytes; integers beyond 64 bits (which orjson refuses) through the json module."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()


# --- core columns --------------------------------------------------------------------------

CORE_COLUMNS: dict[str, ColumnType] = {
    "message_id": ColumnType.STRING,
    "type": ColumnType.STRING,
    "event": ColumnType.STRING,
    "user_id": ColumnType.STRING,
    "anonymous_id": ColumnType.STRING,
    "timestamp": ColumnType.TIMESTAMP,
    "sent_at": ColumnType.TIMESTAMP,
    "received_at": ColumnType.TIMESTAMP,
    "source_id": ColumnType.STRING,
    "loaded_at": ColumnType.TIMESTAMP,
}
# page/screen name, group and alias ids: without them those events would lose their point.
EXTRA_COLUMNS: dict[str, ColumnType] = {
    "name": ColumnType.STRING,
    "group_id": ColumnType.STRING,
    "previous_id": ColumnType.STRING,
}
SINGLE_COLUMNS: dict[str, ColumnType] = {
    **CORE_COLUMNS,
    **EXTRA_COLUMNS,
    "properties": ColumnType.JSON,
    "traits": ColumnType.JSON,
    "context": ColumnType.JSON,
}
DISCARD_COLUMNS: dict[str, ColumnType] = {
    "message_id": ColumnType.STRING,
    "table_name": ColumnType.STRING,
    "column_name": ColumnType.STRING,
    "column_value": ColumnType.STRING,
    "reason": ColumnType.STRING,
    "received_at": ColumnType.TIMESTAMP,
    "loaded_at": ColumnType.TIMESTAMP,
}
_SEGMENT_TABLES = {
    "track": "tracks",
    "identify": "identifies",
    "page": "pages",
    "screen": "screens",
    "group": "groups",
    "alias": "aliases",
}
RESERVED_TABLES = frozenset({*_SEGMENT_TABLES.values(), "users"})


def iso(value: datetime) -> str:
    v = value.astimezone(UTC)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"


def core_row(event: Mapping[str, Any], source_id: str, loaded_at: str) -> Row:
    return {
        "message_id": event.get("messageId"),
        "type": event.get("type"),
        "event": event.get("event"),
        "user_id": event.get("userId"),
        "anonymous_id": event.get("anonymousId"),
        "timestamp": event.get("timestamp"),
        "sent_at": event.get("sentAt"),
        "received_at": event.get("receivedAt"),
        "source_id": source_id,
        "loaded_at": loaded_at,
    }


def single_row(event: Mapping[str, Any], source_id: str, loaded_at: str) -> Row:
    row = core_row(event, source_id, loaded_at)
    row["name"] = event.get("name")
    row["group_id"] = event.get("groupId")
    row["previous_id"] = event.get("previousId")
    row["properties"] = event.get("properties")
    row["traits"] = event.get("traits")
    row["context"] = event.get("context")
    return row


# --- names ---------------------------------------------------------------------------------

_NOT_WORD = re.compile(r"[^a-z0-9]+")


def identifier(name: str, max_bytes: int) -> str:
    """A warehouse-safe lower-case snake_case name: `Order Completed` -> `order_completed`,
    `2fa` -> `_2fa`; cut to the warehouse's length limit."""
    text = _NOT_WORD.sub("_", name.strip().lower()).strip("_") or "_"
    if text[0].isdigit():
        text = "_" + text
    return text[:max_bytes]


def event_table(event_name: str, dialect: Dialect) -> str:
    limit = dialect.max_table_name_bytes or dialect.max_identifier_bytes
    name = identifier(event_name, limit - len("_discards"))
    return f"{name}_event" if name in RESERVED_TABLES else name


def flatten(prefix: str, value: Mapping[str, Any], out: dict[str, Any], depth: int = 0) -> None:
    """{"a": {"b": 1}} -> {"a_b": 1}; arrays stay whole (JSON columns)."""
    for key, item in value.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(item, dict) and depth < 8:
            flatten(name, item, out, depth + 1)
        else:
            out[name] = item


# --- types ---------------------------------------------------------------------------------

_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$"
)


def infer_type(value: Any) -> ColumnType | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return ColumnType.BOOLEAN
    if isinstance(value, int):
        return ColumnType.INTEGER
    if isinstance(value, float):
        return ColumnType.FLOAT
    if isinstance(value, str):
        return ColumnType.TIMESTAMP if _ISO_DATETIME.match(value) else ColumnType.STRING
    return ColumnType.JSON


def _timestamp(value: Any) -> str | None:
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "T").replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return iso(parsed)


_INT64 = (-(2**63), 2**63 - 1)


def fit(value: Any, column: ColumnType | None, dialect: Dialect) -> tuple[Any, str | None]:
    """(the value as the column stores it, None) or (None, the reason it cannot fit).
    `column` None: a column the warehouse has in a type eventrelay does not manage; the value
    is passed as it is and the warehouse decides."""
    if value is None or column is None:
        return value, None
    kind = infer_type(value)
    if column is ColumnType.JSON:
        size = len(dumps(value))
        if size > dialect.max_json_bytes:
            return None, f"too_long: {size} bytes, the column holds {dialect.max_json_bytes}"
        return value, None
    if column is ColumnType.STRING:
        text = value if isinstance(value, str) else dumps(value).decode()
        size = len(text.encode())
        if size > dialect.max_string_bytes:
            return None, f"too_long: {size} bytes, the column holds {dialect.max_string_bytes}"
        return text, None
    if column is ColumnType.TIMESTAMP:
        stamp = _timestamp(value)
        return (stamp, None) if stamp else (None, f"type_mismatch: {kind} into timestamp")
    if column is ColumnType.BOOLEAN:
        if isinstance(value, bool):
            return value, None
        return None, f"type_mismatch: {kind} into boolean"
    if column is ColumnType.INTEGER:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if _INT64[0] <= value <= _INT64[1]:
                return value, None
            return None, "out_of_range: integer beyond 64 bits"
        return None, f"type_mismatch: {kind} into integer"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None
    return None, f"type_mismatch: {kind} into float"


# --- reconciling a batch with the warehouse's columns -------------------------------------


@dataclass(slots=True)
class Reconciled:
    table: TableRows  # rows with every value fitting its column
    create: bool  # the table does not exist yet
    add_columns: dict[str, ColumnType]  # columns to add before loading
    discards: list[Row]  # values left out, for <table>_discards


def reconcile(
    batch: TableRows,
    existing: Mapping[str, ColumnType | None] | None,
    dialect: Dialect,
    loaded_at: str,
) -> Reconciled:
    """Fit a batch to the table as it is: new columns are added (typed by this batch), values
    that do not fit an existing column's type go to discards. `existing` None: no table yet."""
    have: dict[str, ColumnType | None] = dict(existing or {})
    add = {name: kind for name, kind in batch.columns.items() if name not in have}
    columns: dict[str, ColumnType | None] = {**have, **add}
    discards: list[Row] = []
    rows: list[Row] = []
    for row, message_id in zip(batch.rows, batch.message_ids, strict=True):
        fitted: Row = {}
        for name, value in row.items():
            stored, reason = fit(value, columns.get(name), dialect)
            if reason is None:
                fitted[name] = stored
                continue
            discards.append(
                {
                    "message_id": message_id,
                    "table_name": batch.table,
                    "column_name": name,
                    "column_value": _cut(value, dialect),
                    "reason": reason,
                    "received_at": row.get("received_at"),
                    "loaded_at": loaded_at,
                }
            )
        rows.append(fitted)
    table = TableRows(
        batch.table,
        {n: t for n, t in columns.items() if t is not None and (n in batch.columns or n in add)},
        rows,
        batch.message_ids,
        batch.key,
        batch.upsert,
        batch.discards_for,
    )
    return Reconciled(table, existing is None, add, discards)


def _cut(value: Any, dialect: Dialect) -> str:
    text = value if isinstance(value, str) else dumps(value).decode()
    limit = min(dialect.max_string_bytes, 65535) // 4  # characters: UTF-8 is at most 4 bytes
    return text[:limit]


def discards_table(table: str, rows: Sequence[Row]) -> TableRows:
    return TableRows(
        f"{table}_discards",
        dict(DISCARD_COLUMNS),
        list(rows),
        [str(r["message_id"]) for r in rows],
        discards_for=table,
    )


def encode_ndjson(rows: Iterable[Row]) -> bytes:
    """One JSON object per line (UTF-8, `\\n` after each): what every warehouse's JSON loader
    and S3 consumers (Athena, Glue, Spectrum) read."""
    return b"".join(dumps(row) + b"\n" for row in rows)
