"""Snowflake loader: key-pair (JWT) login, tables and columns kept up with the batch, and the
batch staged with PUT, loaded with COPY INTO and moved into its table in one transaction.

Verified against Snowflake's documentation:
- key-pair auth (docs.snowflake.com/en/user-guide/key-pair-auth): the user's RSA public key is
  registered (`ALTER USER ... SET RSA_PUBLIC_KEY`); snowflake-connector-python signs the login
  JWT with the private key (`private_key=`), PKCS#8 PEM, optionally encrypted.
- PUT (docs.snowflake.com/en/sql-reference/sql/put) to a table stage (`@%table`), gzip on upload
  (AUTO_COMPRESS). Every table has a stage, which loads only into that table
  (docs.snowflake.com/en/user-guide/data-load-local-file-system-create-stage), hence one
  staging table per table and batch whose stage holds just that file: TRANSIENT (no Fail-safe
  storage), named after the integration and the batch, replaced when the batch is loaded again
  and dropped once it committed. One a crash left behind (its events then loaded in another
  grouping) is named EVENTRELAY_STG_<integration>_<batch>_<n> and safe to drop.
- COPY INTO with FILE_FORMAT = (TYPE = JSON) loads each NDJSON line into one VARIANT column;
  PURGE removes the staged file once loaded (docs.snowflake.com/en/sql-reference/sql/copy-into-table).
  COPY is the statement a Snowpipe pipe runs (docs.snowflake.com/en/sql-reference/sql/create-pipe).
- transactions (docs.snowflake.com/en/sql-reference/transactions): DDL commits implicitly, so
  tables, columns and staging tables are made before BEGIN; the batch's INSERTs and its
  `EVENTRELAY_LOADS` ledger row commit together, and each INSERT reads its staging table only
  when the ledger does not hold the batch yet: a batch commits once, even in append mode.

`load_method: snowpipe` hands the load to Snowpipe instead (loaders/snowpipe.py): the tables and
columns are still kept up here, then the file goes through a pipe.

What the stand-in cannot show (fakesnow 0.12 over DuckDB, behind tests/support/snowflake.py):
Snowflake's real IAM and key registration (the front checks the JWT against the registered key),
warehouse sizing and queuing, COPY's 64-day load metadata, MERGE inside a transaction,
the COPY FILES option on internal stages and real error codes beyond the ones imitated.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import snowflake.connector
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from snowflake.connector import SnowflakeConnection
from snowflake.connector.cursor import SnowflakeCursor

from eventrelay.destinations.base import OutcomeKind
from eventrelay.destinations.loading import Written
from eventrelay.destinations.snowflake import Snowflake, SnowflakeSettings
from eventrelay.destinations.tables import (
    ColumnType,
    Reconciled,
    TableRows,
    discards_table,
    encode_ndjson,
    iso,
    reconcile,
)
from eventrelay.loaders import snowflake_sql as sql
from eventrelay.loaders.base import CheckStep, Loader, LoadError, LoadReport
from eventrelay.loaders.snowpipe import SnowpipeFeed
from eventrelay.loaders.threads import blocking


class SnowflakeLoader(Loader):
    settings: SnowflakeSettings

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        assert isinstance(self.settings, SnowflakeSettings)
        self._conn: SnowflakeConnection | None = None
        self._lock = threading.Lock()  # one statement sequence at a time on the connection
        self._columns: dict[str, dict[str, ColumnType | None] | None] = {}
        self._ledger_ready = False
        self._pipe = SnowpipeFeed(self) if self.settings.load_method == "snowpipe" else None

    # --- contract ----------------------------------------------------------------------------

    def refs(self, written: Written) -> list[str]:
        s = self.settings
        prefix = f"{s.database}.{s.schema_}".upper()
        tables = [f"{prefix}.{t.table.upper()}" for t in written.tables]
        return tables + (self._pipe.refs(written) if self._pipe is not None else [])

    async def load(self, written: Written) -> LoadReport:
        if self._pipe is not None:
            return await self._pipe.load(written)
        return await blocking(self._guarded, self._load, written)

    async def committed(self, batch_id: str, refs: list[str]) -> bool:
        if self._pipe is not None:
            return await self._pipe.committed(batch_id, self._pipe.refs_of(refs))
        return await blocking(self._guarded, self._committed, batch_id)

    async def check(self) -> list[CheckStep]:
        return await blocking(self._check)

    async def close(self) -> None:
        if self._pipe is not None:
            await self._pipe.close()
        await blocking(self._disconnect)

    # --- connection --------------------------------------------------------------------------

    def _guarded(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            try:
                return fn(*args)
            except Exception as exc:
                error = sql.classify(exc, fn.__name__.strip("_"))
                if error.kind is OutcomeKind.RETRY or error.kind is OutcomeKind.AUTH:
                    self._columns.clear()
                    self._ledger_ready = False
                    self._disconnect()  # a broken or expired session: log in again
                raise error from None

    def _connect(self) -> SnowflakeConnection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        s = self.settings
        passphrase = s.private_key_passphrase
        key = load_pem_private_key(
            s.private_key.get_secret_value().encode(),
            password=passphrase.get_secret_value().encode() if passphrase else None,
        )
        options: dict[str, Any] = {
            "account": s.account,
            "user": s.user,
            "private_key": key,
            "database": s.database,
            "schema": s.schema_,
            "warehouse": s.warehouse,
            "role": s.role,
            "autocommit": True,
            "login_timeout": min(30.0, self.ctx.timeout),
            "network_timeout": self.ctx.timeout,
            "application": "eventrelay",
            "session_parameters": {"QUERY_TAG": "eventrelay", "TIMEZONE": "UTC"},
        }
        base = self.ctx.url("snowflake")
        if base:  # a stand-in (EVENTRELAY_VENDOR_BASE_URLS), same login and query path
            parts = urlsplit(base)
            options.update(host=parts.hostname, port=parts.port, protocol=parts.scheme)
        options = {k: v for k, v in options.items() if v}
        # No cloud-metadata probes (169.254.169.254, metadata.google.internal) for the
        # connector's platform telemetry: 0 turns them off (connector >= 3.17.2).
        options["platform_detection_timeout_seconds"] = 0.0
        self._conn = snowflake.connector.connect(**options)
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken session: nothing to keep
                return

    # --- tables ------------------------------------------------------------------------------

    def _columns_of(self, cur: SnowflakeCursor, table: str) -> dict[str, ColumnType | None] | None:
        if table not in self._columns:
            s = self.settings
            cur.execute(sql.columns_query(s.database, s.schema_, table))
            rows = cur.fetchall()
            found = {str(r[0]).lower(): sql.column_type(str(r[1]), _int(r[2])) for r in rows}
            self._columns[table] = found or None
        return self._columns[table]

    def _prepare(self, cur: SnowflakeCursor, rows: TableRows, loaded_at: str) -> Reconciled:
        existing = self._columns_of(cur, rows.table)
        plan = reconcile(rows, existing, Snowflake.dialect, loaded_at)
        if plan.create:
            cur.execute(sql.create_table(rows.table, plan.add_columns))
        for column, kind in plan.add_columns.items() if not plan.create else ():
            cur.execute(sql.add_column(rows.table, column, kind))
        if plan.create or plan.add_columns:
            self._columns.pop(rows.table, None)
            self._columns_of(cur, rows.table)
        return plan

    def _ensure_ledger(self, cur: SnowflakeCursor) -> None:
        if not self._ledger_ready:
            cur.execute(sql.create_table(sql.LEDGER, sql.LEDGER_COLUMNS))
            self._ledger_ready = True

    # --- one batch ---------------------------------------------------------------------------

    def _load(self, written: Written) -> LoadReport:
        s = self.settings
        cur = self._connect().cursor()
        loaded_at = iso(datetime.now(UTC))
        self._ensure_ledger(cur)
        plans: list[Reconciled] = []
        for table in written.tables:
            plan = self._prepare(cur, table, loaded_at)
            plans.append(plan)
            if plan.discards:
                plans.append(
                    self._prepare(cur, discards_table(table.table, plan.discards), loaded_at)
                )
        staged: list[str] = []
        statements: list[str] = []
        guarded = sql.guard(self.ctx.integration_id, written.id)
        try:
            with tempfile.TemporaryDirectory(prefix="eventrelay-") as folder:
                for index, plan in enumerate(plans):
                    table = plan.table
                    if not table.rows:
                        continue
                    stage = sql.staging_name(self.ctx.integration_id, written.id, index)
                    cur.execute(
                        f"CREATE OR REPLACE TRANSIENT TABLE {sql.name(stage)} (RAW VARIANT)"
                    )
                    staged.append(stage)
                    self._stage(cur, folder, stage, table)
                    target = self._columns.get(table.table) or {}
                    names = list(dict.fromkeys(k for row in table.rows for k in row))
                    columns = {n: target.get(n) for n in names if n in target}
                    statements += sql.move(
                        table.table,
                        stage,
                        columns,
                        key=table.key,
                        upsert=table.upsert,
                        dedup=s.load_mode == "dedup" and table.discards_for is None,
                        window_hours=s.dedup_window_hours,
                        guarded=guarded,
                    )
            statements.append(
                sql.record(self.ctx.integration_id, written.id, len(written.message_ids))
            )
            cur.execute("BEGIN")
            try:
                for statement in statements:
                    cur.execute(statement)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        finally:
            for stage in staged:
                try:
                    cur.execute(f"DROP TABLE IF EXISTS {sql.name(stage)}")
                except Exception:  # a broken session: the batch's retry replaces it
                    break
        rows = sum(len(p.table.rows) for p in plans if p.table.discards_for is None)
        where = self.refs(written)[0] if written.tables else s.database
        return LoadReport(where, rows=rows, discarded_values=sum(len(p.discards) for p in plans))

    def _stage(self, cur: SnowflakeCursor, folder: str, stage: str, table: TableRows) -> None:
        """PUT the rows as NDJSON into the staging table's stage, COPY them in."""
        path = os.path.join(folder, f"{stage.lower()}.json")
        with open(path, "wb") as f:
            f.write(
                encode_ndjson({k: v for k, v in r.items() if v is not None} for r in table.rows)
            )
        cur.execute(f"PUT 'file://{path}' @%{stage} AUTO_COMPRESS = TRUE OVERWRITE = TRUE")
        try:
            cur.execute(
                f"COPY INTO {sql.name(stage)} FROM @%{stage} FILE_FORMAT = (TYPE = JSON) PURGE = TRUE"
            )
            results = cur.fetchall()
        except snowflake.connector.errors.ProgrammingError as exc:
            raise sql.line_error(exc, table.message_ids) or exc from None
        failed = sql.copy_errors(results, table.message_ids)
        if failed is not None:
            raise failed

    def _committed(self, batch_id: str) -> bool:
        cur = self._connect().cursor()
        try:
            cur.execute(sql.committed(self.ctx.integration_id, batch_id))
            row = cur.fetchone()
        except snowflake.connector.errors.ProgrammingError as exc:
            if exc.errno == 2003:  # no ledger yet: nothing was ever committed
                return False
            raise
        return bool(row and row[0])

    def _check(self) -> list[CheckStep]:
        s = self.settings
        table = f"EVENTRELAY_CHECK_{uuid.uuid4().hex[:12].upper()}"
        where = f"{s.database}.{s.schema_}.{table}".upper()
        steps: list[CheckStep] = []
        try:
            cur = self._connect().cursor()
            steps.append(CheckStep(f"login as {s.user} (key pair)", True))
            cur.execute(f"CREATE TEMPORARY TABLE {sql.name(table)} (RAW VARIANT)")
            steps.append(CheckStep(f"create table {where}", True))
            cur.execute(f"INSERT INTO {sql.name(table)} SELECT PARSE_JSON('{{}}')")
            steps.append(CheckStep(f"insert into {where}", True))
            cur.execute(f"DROP TABLE {sql.name(table)}")
            steps.append(CheckStep(f"drop table {where}", True))
        except Exception as exc:
            step = "login" if not steps else "write"
            steps.append(CheckStep(step, False, sql.classify(exc, step).message))
        finally:
            self._disconnect()
        return steps


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


__all__ = ["LoadError", "SnowflakeLoader"]
