"""Redshift loader: stage gzip NDJSON in S3, COPY into a temp table, delete+insert, commit.

See destinations/redshift.py for the statements and what was verified about Redshift. One
connection per batch (psycopg 3, async); DDL (create table, add column) runs before the load
transaction; the load transaction writes the batch id to the `_eventrelay_loads` ledger, which
`committed` reads, so a replay of a committed batch changes nothing.

`copy_runner` and `type_names` are the two seams of the test double that lets PostgreSQL play
Redshift (PostgreSQL has no COPY FROM 's3://' and no SUPER); every other statement runs as it
runs on Redshift. SQL text is assembled from identifiers quoted by `quote` (names already
reduced to lower-case snake_case); values are bound parameters (hence the S608 waivers).
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import psycopg
from psycopg import AsyncConnection

from eventrelay.destinations.base import OutcomeKind
from eventrelay.destinations.loading import StagedObject, Written
from eventrelay.destinations.redshift import (
    CATALOG_TYPES,
    DIALECT,
    LEDGER,
    TYPE_NAMES,
    RedshiftSettings,
    quote,
)
from eventrelay.destinations.tables import (
    ColumnType,
    Reconciled,
    TableRows,
    discards_table,
    encode_ndjson,
    iso,
    reconcile,
)
from eventrelay.loaders.aws import S3Session
from eventrelay.loaders.base import CheckStep, Loader, LoadError, LoadReport
from eventrelay.loaders.s3 import S3Uploader, s3_url

GZIP_LEVEL = 4
STATEMENT_TIMEOUT_MS = 600_000


@dataclass(frozen=True, slots=True)
class CopyStatement:
    """COPY of one staged file into a staging table."""

    table: str  # quoted staging table
    columns: Mapping[str, ColumnType]  # of the staged rows
    bucket: str
    key: str
    region: str
    authorization: str  # IAM_ROLE '...' or ACCESS_KEY_ID '...' SECRET_ACCESS_KEY '...'

    def sql(self) -> str:
        return (
            f"COPY {self.table} FROM '{s3_url(self.bucket, self.key)}' {self.authorization}"
            f" FORMAT AS JSON 'auto' GZIP TIMEFORMAT 'auto' REGION '{self.region}'"
        )


class CopyRowsRefused(Exception):
    """COPY refused rows: (line number in the staged file, 1-based; column; reason)."""

    def __init__(self, rows: list[tuple[int, str, str]]) -> None:
        super().__init__(f"{len(rows)} rows refused")
        self.rows = rows


async def run_copy(conn: AsyncConnection[Any], statement: CopyStatement) -> None:
    """COPY on Redshift; a refused file names its rows in STL_LOAD_ERRORS."""
    try:
        await conn.execute(statement.sql().encode())
    except psycopg.Error as exc:
        if "stl_load_errors" not in str(exc).lower():
            raise
        rows = await _load_errors(conn)
        if not rows:
            raise
        raise CopyRowsRefused(rows) from None


async def _load_errors(conn: AsyncConnection[Any]) -> list[tuple[int, str, str]]:
    async with conn.transaction(force_rollback=True):
        cursor = await conn.execute(
            "SELECT line_number, TRIM(colname), TRIM(err_reason) FROM stl_load_errors"
            " WHERE query = pg_last_copy_id() ORDER BY line_number"
        )
        return [(int(line), str(col), str(reason)) for line, col, reason in await cursor.fetchall()]


CopyRunner = Callable[[AsyncConnection[Any], CopyStatement], Awaitable[None]]


class RedshiftLoader(Loader):
    copy_runner: ClassVar[CopyRunner] = staticmethod(run_copy)
    type_names: ClassVar[Mapping[ColumnType, str]] = TYPE_NAMES
    catalog_types: ClassVar[Mapping[str, ColumnType]] = CATALOG_TYPES

    @property
    def _settings(self) -> RedshiftSettings:
        assert isinstance(self.settings, RedshiftSettings)
        return self.settings

    def _uploader(self) -> S3Uploader:
        uploader: S3Uploader | None = getattr(self, "_up", None)
        if uploader is None:
            s = self._settings
            secret = s.aws_secret_access_key.get_secret_value() if s.aws_secret_access_key else None
            session = S3Session(
                s.region,
                s.aws_access_key_id,
                secret,
                self.ctx.url("redshift", "s3"),
                self.ctx.timeout,
            )
            uploader = S3Uploader(session, s.s3_staging_bucket)
            self._up = uploader
        return uploader

    async def close(self) -> None:
        uploader: S3Uploader | None = getattr(self, "_up", None)
        if uploader is not None:
            await uploader.session.close()

    def _key(self, batch_id: str, table: str) -> str:
        return f"{self._settings.s3_staging_prefix}{self.ctx.integration_id}/{batch_id}/{table}.json.gz"

    def refs(self, written: Written) -> list[str]:
        s = self._settings
        return [f"{s.schema_}.{t.table}" for t in written.tables]

    def _qualified(self, table: str) -> str:
        return f"{quote(self._settings.schema_.lower())}.{quote(table)}"

    def _authorization(self) -> str:
        s = self._settings
        if s.iam_role:
            return f"IAM_ROLE '{s.iam_role}'"
        if not (s.aws_access_key_id and s.aws_secret_access_key):
            return "IAM_ROLE default"
        secret = s.aws_secret_access_key.get_secret_value().replace("'", "''")
        return f"ACCESS_KEY_ID '{s.aws_access_key_id}' SECRET_ACCESS_KEY '{secret}'"

    async def _connect(self) -> AsyncConnection[Any]:
        s = self._settings
        try:
            conn = await AsyncConnection.connect(
                host=s.host,
                port=s.port,
                dbname=s.database,
                user=s.user,
                password=s.password.get_secret_value(),
                sslmode=s.sslmode,
                connect_timeout=15,
                application_name="eventrelay",
                autocommit=True,
            )
        except psycopg.Error as exc:
            raise classify(exc, "connect", committed=False) from None
        try:
            await conn.execute(f"SET statement_timeout TO {STATEMENT_TIMEOUT_MS}".encode())
        except psycopg.Error as exc:
            await conn.close()
            raise classify(exc, "connect", committed=False) from None
        return conn

    # --- load ----------------------------------------------------------------------------------

    async def load(self, written: Written) -> LoadReport:
        loaded_at = iso(datetime.now(UTC))
        conn = await self._connect()
        committing = False
        staged: list[str] = []
        current: Reconciled | None = None
        try:
            if await self._in_ledger(conn, written.id):
                return LoadReport(", ".join(self.refs(written)), already_committed=True)
            plans = await self._prepare(conn, written.tables, loaded_at)
            staged = await self._stage(written.id, plans)
            async with conn.transaction():
                for plan, key in zip(plans, staged, strict=True):
                    current = plan
                    await self._load_table(conn, plan, key)
                await conn.execute(
                    f"INSERT INTO {self._qualified(LEDGER)} (batch_id, loaded_at) VALUES (%s, %s)",  # noqa: S608
                    (written.id, loaded_at),
                )
                committing = True
            rows = sum(len(p.table.rows) for p in plans if p.table.discards_for is None)
            discarded = sum(len(p.table.rows) for p in plans if p.table.discards_for is not None)
        except CopyRowsRefused as exc:
            assert current is not None
            raise self._refused(exc, current) from None
        except psycopg.Error as exc:
            raise classify(exc, "load", committed=None if committing else False) from None
        finally:
            await conn.close()
        await self._unstage(staged)
        return LoadReport(", ".join(self.refs(written)), rows=rows, discarded_values=discarded)

    async def _in_ledger(self, conn: AsyncConnection[Any], batch_id: str) -> bool:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self._qualified(LEDGER)}"
            " (batch_id VARCHAR(64) NOT NULL, loaded_at TIMESTAMPTZ NOT NULL)".encode()
        )
        cursor = await conn.execute(
            f"SELECT 1 FROM {self._qualified(LEDGER)} WHERE batch_id = %s",  # noqa: S608
            (batch_id,),
        )
        return await cursor.fetchone() is not None

    async def _columns(
        self, conn: AsyncConnection[Any], tables: list[str]
    ) -> dict[str, dict[str, ColumnType | None]]:
        marks = ", ".join(["%s"] * len(tables))
        cursor = await conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"  # noqa: S608
            f" WHERE table_schema = %s AND table_name IN ({marks})",
            (self._settings.schema_.lower(), *tables),
        )
        found: dict[str, dict[str, ColumnType | None]] = {}
        for table, column, data_type in await cursor.fetchall():
            found.setdefault(table, {})[column] = self.catalog_types.get(str(data_type).lower())
        return found

    async def _prepare(
        self, conn: AsyncConnection[Any], tables: list[TableRows], loaded_at: str
    ) -> list[Reconciled]:
        """Fit each table's rows to its columns; create tables and add columns first."""
        names = [t.table for t in tables] + [f"{t.table}_discards" for t in tables]
        existing = await self._columns(conn, names)
        plans: list[Reconciled] = []
        for table in tables:
            plan = reconcile(table, existing.get(table.table), DIALECT, loaded_at)
            plans.append(plan)
            if plan.discards:
                rows = discards_table(table.table, plan.discards)
                plans.append(reconcile(rows, existing.get(rows.table), DIALECT, loaded_at))
        for plan in plans:
            await self._ddl(conn, plan)
        return plans

    async def _ddl(self, conn: AsyncConnection[Any], plan: Reconciled) -> None:
        target = self._qualified(plan.table.table)
        if plan.create:
            columns = ", ".join(
                f"{quote(n)} {self.type_names[t]}" for n, t in plan.table.columns.items()
            )
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {target} ({columns})".encode())
            return
        for name, kind in plan.add_columns.items():
            with contextlib.suppress(psycopg.errors.DuplicateColumn):  # added meanwhile
                await conn.execute(
                    f"ALTER TABLE {target} ADD COLUMN {quote(name)} {self.type_names[kind]}".encode()
                )

    async def _stage(self, batch_id: str, plans: list[Reconciled]) -> list[str]:
        uploader = self._uploader()
        keys = []
        for plan in plans:
            key = self._key(batch_id, plan.table.table)
            body = gzip.compress(encode_ndjson(plan.table.rows), compresslevel=GZIP_LEVEL, mtime=0)
            await uploader.put(StagedObject(key, body, "application/gzip"))
            keys.append(key)
        return keys

    async def _unstage(self, keys: list[str]) -> None:
        uploader = self._uploader()
        for key in keys:
            # The load committed; a lifecycle rule on the prefix sweeps what is left.
            with contextlib.suppress(LoadError):
                await uploader.delete(key)

    async def _load_table(self, conn: AsyncConnection[Any], plan: Reconciled, key: str) -> None:
        s = self._settings
        table = plan.table
        target = self._qualified(table.table)
        stage = quote(f"stage_{table.table}"[:127])
        await conn.execute(f"CREATE TEMP TABLE {stage} (LIKE {target})".encode())
        await type(self).copy_runner(
            conn,
            CopyStatement(
                stage, table.columns, s.s3_staging_bucket, key, s.region, self._authorization()
            ),
        )
        if table.discards_for is None and (table.upsert or s.load_mode == "dedup"):
            key_column = quote(table.key)
            condition = f"{target}.{key_column} = {stage}.{key_column}"
            params: tuple[Any, ...] = ()
            if not table.upsert:
                condition += f" AND {target}.{quote('received_at')} >= %s"
                params = (datetime.now(UTC) - timedelta(hours=s.dedup_window_hours),)
            await conn.execute(f"DELETE FROM {target} USING {stage} WHERE {condition}", params)  # noqa: S608
        columns = ", ".join(quote(name) for name in table.columns)
        await conn.execute(
            f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {stage}".encode()  # noqa: S608
        )
        await conn.execute(f"DROP TABLE {stage}".encode())

    def _refused(self, exc: CopyRowsRefused, plan: Reconciled) -> LoadError:
        # Lines of the staged file are the rows of the table being copied, in order.
        rows: dict[str, str] = {}
        ids = plan.table.message_ids
        for line, column, reason in exc.rows:
            if 0 < line <= len(ids):
                rows[ids[line - 1]] = f"line {line}, column {column}: {reason}"
        if not rows:
            return LoadError(OutcomeKind.SPLIT, "copy_refused", str(exc), committed=False)
        return LoadError(
            OutcomeKind.DROP, "copy_refused", "COPY refused rows", rows=rows, committed=False
        )

    # --- recovery and check --------------------------------------------------------------------

    async def committed(self, batch_id: str, refs: list[str]) -> bool:
        conn = await self._connect()
        try:
            return await self._in_ledger(conn, batch_id)
        except psycopg.Error as exc:
            raise classify(exc, "ledger", committed=None) from None
        finally:
            await conn.close()

    async def check(self) -> list[CheckStep]:
        s = self._settings
        steps: list[CheckStep] = []
        name = self._qualified("_eventrelay_test")
        try:
            conn = await self._connect()
        except LoadError as exc:
            return [
                CheckStep(f"connect {s.host}:{s.port}/{s.database} as {s.user}", False, exc.message)
            ]
        steps.append(CheckStep(f"connect {s.host}:{s.port}/{s.database} as {s.user}", True))
        try:
            for sql in (f"CREATE TABLE IF NOT EXISTS {name} (id BIGINT)", f"DROP TABLE {name}"):
                try:
                    await conn.execute(sql.encode())
                except psycopg.Error as exc:
                    steps.append(CheckStep(sql, False, classify(exc, sql).message))
                    return steps
                steps.append(CheckStep(sql, True))
        finally:
            await conn.close()
        steps += await self._uploader().check(s.s3_staging_prefix)
        return steps


# SQLSTATE classes: www.postgresql.org/docs/current/errcodes-appendix.html (Redshift uses the
# same codes; its serializable isolation violation 1023 arrives as 40001).
_AUTH_STATES = {"28000", "28P01", "42501", "3D000", "3F000"}
_RETRY_CLASSES = ("08", "40", "53", "57", "58", "XX")


def classify(exc: psycopg.Error, what: str, committed: bool | None = False) -> LoadError:
    state = exc.sqlstate or ""
    text = (exc.diag.message_primary if exc.diag and exc.diag.message_primary else str(exc)).strip()
    message = f"{what}: {text}"
    reason = f"redshift_{state or 'connection'}"
    if state in _AUTH_STATES:
        return LoadError(OutcomeKind.AUTH, reason, message, committed=False)
    if not state and isinstance(exc, psycopg.OperationalError):
        lowered = text.lower()
        if "password" in lowered or "authentication" in lowered or "does not exist" in lowered:
            return LoadError(OutcomeKind.AUTH, reason, message, committed=False)
        return LoadError(OutcomeKind.RETRY, reason, message, committed=committed)
    if not state or state.startswith(_RETRY_CLASSES):
        return LoadError(OutcomeKind.RETRY, reason, message, committed=committed)
    if state.startswith("22"):  # a value the table refused, outside COPY: find the row
        return LoadError(OutcomeKind.SPLIT, reason, message, committed=False)
    # Anything else is about the target's shape or rights: wait in error with its words.
    return LoadError(OutcomeKind.AUTH, reason, message, committed=False)
