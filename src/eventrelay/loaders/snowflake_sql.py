# ruff: noqa: S608 - statements are built from names tables.identifier or the settings patterns
# checked (quoted, upper case) and ids that literal() checks; values never reach them.
"""Snowflake types, statements and the classification of its errors.

Types (docs.snowflake.com/en/sql-reference/intro-summary-data-types): VARCHAR, NUMBER(38,0),
FLOAT, BOOLEAN, TIMESTAMP_TZ, and VARIANT for properties/traits/context. A staged batch is one
VARIANT column per row (`RAW`, COPY INTO with FILE_FORMAT = (TYPE = JSON)); the statements that
move it into its table cast each field (`RAW:"total"::NUMBER(38,0)`).

Dedup is an anti-join insert (`INSERT ... SELECT ... WHERE NOT EXISTS` the message_id within the
window), what MERGE ... WHEN NOT MATCHED THEN INSERT does; users rows (Segment layout) are an
UPDATE ... FROM then the same insert. Plain statements rather than MERGE because they run inside
one transaction with the ledger row (docs.snowflake.com/en/sql-reference/transactions), and the
stand-in (fakesnow) cannot run a MERGE inside a transaction.

Errors (docs.snowflake.com/en/user-guide/key-pair-auth-troubleshooting and the connector's
errno): 390xxx are login and session errors (390144 "JWT token is invalid", 390100 incorrect
user or password, 390102 user disabled): credentials, the integration goes to error, except an
expired session (390112, 390114), which reconnects. 003001 insufficient privileges, a missing
database or schema (002003 naming it), no active warehouse (000606): error state with
Snowflake's message. Network errors, HTTP 5xx, statement timeouts and lock conflicts: retry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from snowflake.connector import errors as sf_errors

from eventrelay.destinations.base import OutcomeKind
from eventrelay.destinations.tables import ColumnType
from eventrelay.loaders.base import LoadError

LEDGER = "EVENTRELAY_LOADS"
LEDGER_COLUMNS: dict[str, ColumnType] = {
    "integration_id": ColumnType.STRING,
    "batch_id": ColumnType.STRING,
    "row_count": ColumnType.INTEGER,
    "loaded_at": ColumnType.TIMESTAMP,
}
TYPE_NAMES: dict[ColumnType, str] = {
    ColumnType.STRING: "VARCHAR",
    ColumnType.INTEGER: "NUMBER(38,0)",
    ColumnType.FLOAT: "FLOAT",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.TIMESTAMP: "TIMESTAMP_TZ",
    ColumnType.JSON: "VARIANT",
}
_FROM_SNOWFLAKE: dict[str, ColumnType] = {
    "TEXT": ColumnType.STRING,
    "VARCHAR": ColumnType.STRING,
    "STRING": ColumnType.STRING,
    "FLOAT": ColumnType.FLOAT,
    "DOUBLE": ColumnType.FLOAT,
    "REAL": ColumnType.FLOAT,
    "BOOLEAN": ColumnType.BOOLEAN,
    "TIMESTAMP_TZ": ColumnType.TIMESTAMP,
    "TIMESTAMP_LTZ": ColumnType.TIMESTAMP,
    "TIMESTAMP_NTZ": ColumnType.TIMESTAMP,
    "VARIANT": ColumnType.JSON,
    "OBJECT": ColumnType.JSON,
    "ARRAY": ColumnType.JSON,
}
SESSION_EXPIRED = frozenset({390112, 390114})
AUTH_CODES = frozenset({3001, 606, 2043})
RETRY_MESSAGE = re.compile(r"timeout|timed out|deadlock|lock|try again|temporar", re.IGNORECASE)
MISSING_CONTAINER = re.compile(r"(Database|Schema) '[^']*' does not exist", re.IGNORECASE)
_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def name(identifier: str) -> str:
    """A quoted upper-case identifier: reads as the unquoted name, safe for reserved words."""
    return '"' + identifier.upper().replace('"', "") + '"'


def staging_name(integration_id: str, batch_id: str, index: int) -> str:
    return f"EVENTRELAY_STG_{integration_id}_{batch_id}_{index}".upper()


def literal(value: str) -> str:
    if not _SAFE.match(value):
        raise ValueError(f"not an id: {value!r}")
    return f"'{value}'"


def column_type(data_type: str, scale: int | None) -> ColumnType | None:
    kind = data_type.upper().split("(")[0]
    if kind in ("NUMBER", "DECIMAL", "NUMERIC", "INT", "INTEGER", "BIGINT"):
        return ColumnType.INTEGER if not scale else None
    return _FROM_SNOWFLAKE.get(kind)


def create_table(table: str, columns: Mapping[str, ColumnType]) -> str:
    body = ", ".join(f"{name(c)} {TYPE_NAMES[t]}" for c, t in columns.items())
    return f"CREATE TABLE IF NOT EXISTS {name(table)} ({body})"


def add_column(table: str, column: str, kind: ColumnType) -> str:
    return f"ALTER TABLE {name(table)} ADD COLUMN IF NOT EXISTS {name(column)} {TYPE_NAMES[kind]}"


def _field(column: str, kind: ColumnType | None) -> str:
    raw = f'S.RAW:"{column}"'
    if kind is None or kind is ColumnType.JSON:
        return raw
    if kind is ColumnType.TIMESTAMP:  # through VARCHAR: an ISO 8601 string, NULL when missing
        return f"{raw}::VARCHAR::TIMESTAMP_TZ"
    return f"{raw}::{TYPE_NAMES[kind]}"


def guard(integration_id: str, batch_id: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM {name(LEDGER)} AS L WHERE L.INTEGRATION_ID ="
        f" {literal(integration_id)} AND L.BATCH_ID = {literal(batch_id)})"
    )


def move(
    table: str,
    staging: str,
    columns: Mapping[str, ColumnType | None],
    *,
    key: str,
    upsert: bool,
    dedup: bool,
    window_hours: int,
    guarded: str,
) -> list[str]:
    """The statements moving a staging table into its table (inside the batch's transaction)."""
    names = ", ".join(name(c) for c in columns)
    values = ", ".join(f"{_field(c, t)} AS {name(c)}" for c, t in columns.items())
    source = f"(SELECT {values} FROM {name(staging)} AS S WHERE {guarded})"
    target = name(table)
    insert = f"INSERT INTO {target} ({names}) SELECT {names} FROM {source} AS S"
    if not upsert and not dedup:
        return [insert]
    match = f"T.{name(key)} = S.{name(key)}"
    if not upsert:
        match += f" AND T.RECEIVED_AT >= DATEADD(hour, -{int(window_hours)}, CURRENT_TIMESTAMP())"
    statements = []
    if upsert:  # users: the latest identify of a user replaces its row
        sets = ", ".join(f"{name(c)} = S.{name(c)}" for c in columns if c != key)
        statements.append(f"UPDATE {target} AS T SET {sets} FROM {source} AS S WHERE {match}")
    statements.append(f"{insert} WHERE NOT EXISTS (SELECT 1 FROM {target} AS T WHERE {match})")
    return statements


def record(integration_id: str, batch_id: str, rows: int) -> str:
    return (
        f"INSERT INTO {name(LEDGER)} (INTEGRATION_ID, BATCH_ID, ROW_COUNT, LOADED_AT)"
        f" SELECT {literal(integration_id)}, {literal(batch_id)}, {int(rows)},"
        f" CURRENT_TIMESTAMP() WHERE {guard(integration_id, batch_id)}"
    )


def committed(integration_id: str, batch_id: str) -> str:
    return (
        f"SELECT COUNT(*) FROM {name(LEDGER)} WHERE INTEGRATION_ID = {literal(integration_id)}"
        f" AND BATCH_ID = {literal(batch_id)}"
    )


def columns_query(database: str, schema: str, table: str) -> str:
    return (
        "SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_SCALE FROM INFORMATION_SCHEMA.COLUMNS"
        f" WHERE TABLE_CATALOG = '{database.upper()}' AND TABLE_SCHEMA = '{schema.upper()}'"
        f" AND TABLE_NAME = '{table.upper()}' ORDER BY ORDINAL_POSITION"
    )


def classify(exc: BaseException, what: str, committed: bool | None = False) -> LoadError:
    if isinstance(exc, LoadError):
        return exc
    if not isinstance(exc, sf_errors.Error):
        if isinstance(exc, OSError | TimeoutError):
            return LoadError(
                OutcomeKind.RETRY, "snowflake_unreachable", f"{what}: {exc}", committed=None
            )
        raise exc
    errno = int(exc.errno or 0)
    text = str(exc.msg or exc).strip()
    message = f"{what}: {text}"
    reason = f"snowflake_{errno:06d}"
    if errno in SESSION_EXPIRED:
        return LoadError(OutcomeKind.RETRY, reason, message, committed=False)
    if 390000 <= errno < 391000:
        return LoadError(OutcomeKind.AUTH, reason, message, committed=False)
    if isinstance(exc, sf_errors.OperationalError | sf_errors.InterfaceError):
        return LoadError(OutcomeKind.RETRY, reason, message, committed=committed)
    if errno in AUTH_CODES or MISSING_CONTAINER.search(text):
        return LoadError(OutcomeKind.AUTH, reason, message, committed=committed)
    if errno == 2003 or RETRY_MESSAGE.search(text) or errno >= 250000:
        # a table gone under us (looked up again), a lock, a timeout, the service
        return LoadError(OutcomeKind.RETRY, reason, message, committed=committed)
    # Any other refusal of our statements does not pass with time: error state, Snowflake's words.
    return LoadError(OutcomeKind.AUTH, reason, message, committed=committed)


LINE = re.compile(r"\bline (\d+)\b")


def copy_errors(
    results: Sequence[tuple[object, ...]], message_ids: Sequence[str]
) -> LoadError | None:
    """COPY INTO's result per file: (file, status, rows_parsed, rows_loaded, error_limit,
    errors_seen, first_error, first_error_line, ...). A file not LOADED names its first bad
    line: that row is dropped with Snowflake's reason."""
    for row in results:
        status = str(row[1]) if len(row) > 1 else ""
        if status in ("LOADED", "LOAD_SKIPPED", "PARTIALLY_LOADED") and not (
            len(row) > 5 and row[5]
        ):
            continue
        first = str(row[6]) if len(row) > 6 and row[6] else f"COPY: {status}"
        line = row[7] if len(row) > 7 else None
        if isinstance(line, int) and 1 <= line <= len(message_ids):
            return LoadError(
                OutcomeKind.DROP,
                "snowflake_copy_error",
                f"COPY INTO: {first}",
                rows={message_ids[line - 1]: first},
            )
        return LoadError(OutcomeKind.SPLIT, "snowflake_copy_error", f"COPY INTO: {first}")
    return None


def line_error(exc: BaseException, message_ids: Sequence[str]) -> LoadError | None:
    """A COPY aborted on a bad row (ON_ERROR = ABORT_STATEMENT): its message names the line."""
    match = LINE.search(str(exc))
    if match and 1 <= int(match[1]) <= len(message_ids):
        text = str(getattr(exc, "msg", exc))
        return LoadError(
            OutcomeKind.DROP,
            "snowflake_copy_error",
            f"COPY INTO: {text}",
            rows={message_ids[int(match[1]) - 1]: text},
        )
    return None
