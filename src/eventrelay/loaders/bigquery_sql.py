# ruff: noqa: S608 - statements are built from names the settings patterns or
# tables.identifier checked, and ids that literal() checks; values never reach them.
"""BigQuery table schemas, row encodings and the statements of a load-job batch.

Types (cloud.google.com/bigquery/docs/reference/standard-sql/data-types): STRING, INT64,
FLOAT64, BOOL, TIMESTAMP and JSON for properties/traits/context. Row encodings differ by API:
insertAll takes a JSON column's value as a JSON-encoded string (google-cloud-bigquery's own
`insert_rows` does that for JSON fields), a load job reads the raw JSON value
(cloud.google.com/bigquery/docs/loading-data-cloud-storage-json: "A field that is declared as
JSON type is loaded with the raw JSON values"). Integers beyond 2^53 are sent as strings in
both: JSON numbers lose precision past it (same page, and RFC 7159).

A load-job batch commits in one multi-statement transaction
(cloud.google.com/bigquery/docs/transactions): MERGE/INSERT from each staging table, then the
batch's row in the `eventrelay_loads` ledger; every statement reads from its staging table only
when the ledger does not hold the batch yet, so running the script twice loads the rows once.
Ids and bounds are literals (made by eventrelay, checked) rather than query parameters, which
bqemulator does not pass into scripts.
MERGE touches only rows it inserts (WHEN NOT MATCHED): rows streamed by insertAll in the last 30
minutes cannot be updated (cloud.google.com/bigquery/docs/data-manipulation-language). The
target side of the MERGE is bounded to the days of the batch's `timestamp` values (the partition
column), so BigQuery prunes the other partitions instead of scanning the whole table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from google.cloud import bigquery

from eventrelay.destinations.tables import ColumnType, Row, dumps
from eventrelay.timeutil import parse_iso

LEDGER = "eventrelay_loads"
LEDGER_COLUMNS: dict[str, ColumnType] = {
    "integration_id": ColumnType.STRING,
    "batch_id": ColumnType.STRING,
    "row_count": ColumnType.INTEGER,
    "loaded_at": ColumnType.TIMESTAMP,
}
LEDGER_DAYS = 35  # partitions expire: a batch cannot come back after the max event age

TYPE_NAMES: dict[ColumnType, str] = {
    ColumnType.STRING: "STRING",
    ColumnType.INTEGER: "INT64",
    ColumnType.FLOAT: "FLOAT64",
    ColumnType.BOOLEAN: "BOOL",
    ColumnType.TIMESTAMP: "TIMESTAMP",
    ColumnType.JSON: "JSON",
}
_FROM_BIGQUERY: dict[str, ColumnType] = {
    "STRING": ColumnType.STRING,
    "INTEGER": ColumnType.INTEGER,
    "INT64": ColumnType.INTEGER,
    "FLOAT": ColumnType.FLOAT,
    "FLOAT64": ColumnType.FLOAT,
    "BOOLEAN": ColumnType.BOOLEAN,
    "BOOL": ColumnType.BOOLEAN,
    "TIMESTAMP": ColumnType.TIMESTAMP,
    "JSON": ColumnType.JSON,
}
SAFE_INTEGER = 2**53 - 1


def column_types(schema: Iterable[bigquery.SchemaField]) -> dict[str, ColumnType | None]:
    """A table's columns as eventrelay sees them; None for types it does not manage (NUMERIC,
    DATE, RECORD...): values pass to those as they are and BigQuery decides."""
    out: dict[str, ColumnType | None] = {}
    for f in schema:
        repeated = f.mode == "REPEATED"
        out[f.name] = None if repeated else _FROM_BIGQUERY.get(f.field_type.upper())
    return out


def new_field(name: str, kind: ColumnType) -> bigquery.SchemaField:
    return bigquery.SchemaField(name, TYPE_NAMES[kind], mode="NULLABLE")


def partition_field(columns: Iterable[str]) -> str | None:
    """Events by day of `timestamp`; other tables (users, discards, ledger) by `loaded_at`."""
    names = set(columns)
    for name in ("timestamp", "loaded_at"):
        if name in names:
            return name
    return None


def _number(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > SAFE_INTEGER:
        return str(value)
    return value


def stream_row(row: Row, json_columns: frozenset[str]) -> dict[str, Any]:
    return {
        name: (dumps(value).decode() if name in json_columns else _number(value))
        for name, value in row.items()
        if value is not None
    }


def load_row(row: Row) -> dict[str, Any]:
    return {name: _number(value) for name, value in row.items() if value is not None}


def quoted(*parts: str) -> str:
    """`project.dataset.table`; names are checked by the settings patterns or made by
    `tables.identifier`, so they hold no backquote."""
    return "`" + ".".join(parts) + "`"


def day_bounds(rows: Sequence[Row]) -> str | None:
    """`AND T.timestamp >= @lo AND T.timestamp < @hi` over the days the batch's events fall in
    (a day either side: a client's resend may be clock-corrected into the next day), or None
    when a row has no timestamp."""
    stamps: list[datetime] = []
    for row in rows:
        value = row.get("timestamp")
        if not isinstance(value, str):
            return None
        stamps.append(parse_iso(value))
    if not stamps:
        return None
    lo = min(stamps).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    hi = max(stamps).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    return f" AND T.`timestamp` >= {_day(lo)} AND T.`timestamp` < {_day(hi)}"


def _day(value: datetime) -> str:
    return f"TIMESTAMP '{value.strftime('%Y-%m-%d')} 00:00:00+00'"


_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def literal(value: str) -> str:
    """A string literal for ids eventrelay makes itself (integration and batch ids): literals
    rather than query parameters, which bqemulator does not pass into scripts."""
    if not _SAFE.match(value):
        raise ValueError(f"not an id: {value!r}")
    return f"'{value}'"


def guard(ledger: str, integration_id: str, batch_id: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM {ledger} AS L WHERE L.integration_id ="
        f" {literal(integration_id)} AND L.batch_id = {literal(batch_id)})"
    )


def table_statement(
    target: str,
    staging: str,
    columns: Sequence[str],
    *,
    key: str,
    upsert: bool,
    dedup: bool,
    window_hours: int,
    guarded: str,
    bounds: str | None,
) -> str:
    """The statement moving one staging table into its table; `guarded` is `guard(...)`."""
    names = ", ".join(f"`{c}`" for c in columns)
    source = f"(SELECT {names} FROM {staging} WHERE {guarded})"
    if not upsert and not dedup:
        return f"INSERT INTO {target} ({names}) SELECT {names} FROM {source}"
    values = ", ".join(f"S.`{c}`" for c in columns)
    on = f"T.`{key}` = S.`{key}`"
    if not upsert:
        on += (
            " AND T.`received_at` >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(),"
            f" INTERVAL {int(window_hours)} HOUR)"
        )
        on += bounds or ""
    sql = f"MERGE {target} AS T USING {source} AS S ON {on}"
    if upsert:  # users: the latest identify of a user replaces its row
        updates = ", ".join(f"`{c}` = S.`{c}`" for c in columns if c != key)
        sql += f" WHEN MATCHED THEN UPDATE SET {updates}"
    return sql + f" WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"


def transaction(
    statements: Sequence[str],
    ledger: str,
    integration_id: str,
    batch_id: str,
    rows: int,
    *,
    record: bool = True,
) -> str:
    parts = list(statements)
    if record:
        parts.append(
            f"INSERT INTO {ledger} (integration_id, batch_id, row_count, loaded_at)"
            f" SELECT {literal(integration_id)}, {literal(batch_id)}, {int(rows)},"
            f" CURRENT_TIMESTAMP() FROM (SELECT 1) WHERE {guard(ledger, integration_id, batch_id)}"
        )
    body = ";\n".join(parts)
    return f"BEGIN TRANSACTION;\n{body};\nCOMMIT TRANSACTION;"


def committed_query(ledger: str) -> str:
    return (
        f"SELECT COUNT(1) FROM {ledger}"
        " WHERE integration_id = @integration_id AND batch_id = @batch_id"
    )


def staging_name(table: str, batch_id: str) -> str:
    return f"{table[: 1024 - 40]}_eventrelay_stg_{batch_id}"


def ledger_fields() -> list[bigquery.SchemaField]:
    return [new_field(n, t) for n, t in LEDGER_COLUMNS.items()]


def json_columns(columns: Mapping[str, ColumnType | None]) -> frozenset[str]:
    return frozenset(n for n, t in columns.items() if t is ColumnType.JSON)
