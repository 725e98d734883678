"""BigQuery loader: service-account auth, tables and columns kept up with the batch, and the
batch loaded by streaming insert or by load job + MERGE (see destinations/bigquery.py).

Verified against Google's documentation:
- auth: the service account key is exchanged for an access token at its `token_uri` with a
  signed JWT (developers.google.com/identity/protocols/oauth2/service-account), done by
  google-auth; scope https://www.googleapis.com/auth/bigquery.
- insertAll (cloud.google.com/bigquery/docs/reference/rest/v2/tabledata/insertAll): `insertId`
  is best-effort dedup for about a minute; `skipInvalidRows` false fails the whole request when
  a row is invalid, and `insertErrors[]` names the row (`stopped` rows were only held back).
- partitioned tables (cloud.google.com/bigquery/docs/partitioned-tables): DAY on `timestamp`.
- schema changes: a column is added by tables.patch with the full new schema
  (cloud.google.com/bigquery/docs/managing-table-schemas).
- crash recovery: the `eventrelay_loads` ledger. A load-job batch writes its row in the same
  transaction as its data; a streamed batch writes it after all its rows were accepted, so a
  batch found there is acknowledged, and one that is not is streamed again with the same
  insertIds (Google's best-effort dedup; exact for the load-job method).

What the stand-in cannot show (tests/support/bigquery.py: bqemulator behind a small front):
Google's real quota and rate-limit behaviour, real IAM, insertId dedup (the front imitates it),
tables.patch adding storage columns (the front completes it with ALTER TABLE), load-job ids
(bqemulator ignores them), streaming-buffer DML limits and partition pruning costs.
"""

from __future__ import annotations

import contextlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.cloud import bigquery
from google.oauth2 import service_account

from eventrelay.destinations.base import OutcomeKind
from eventrelay.destinations.bigquery import BIGQUERY_SCOPE, BigquerySettings
from eventrelay.destinations.loading import Written
from eventrelay.destinations.tables import (
    ColumnType,
    Reconciled,
    TableRows,
    discards_table,
    dumps,
    encode_ndjson,
    iso,
)
from eventrelay.loaders import bigquery_sql as sql
from eventrelay.loaders.base import CheckStep, Loader, LoadError, LoadReport
from eventrelay.loaders.bigquery_errors import classify, load_error, reasons
from eventrelay.loaders.bigquery_tables import NO_RETRY, BigqueryTables
from eventrelay.loaders.threads import blocking

STREAM_ROWS = 500  # per insertAll request, Google's recommendation
STREAM_BYTES = 8 * 1024 * 1024  # under the 10 MB request limit


class BigqueryLoader(BigqueryTables, Loader):
    settings: BigquerySettings

    def __init__(self, *args: Any) -> None:
        Loader.__init__(self, *args)
        assert isinstance(self.settings, BigquerySettings)
        BigqueryTables.__init__(self)
        self._client: bigquery.Client | None = None

    # --- contract ----------------------------------------------------------------------------

    def refs(self, written: Written) -> list[str]:
        s = self.settings
        return [f"{s.project_id}.{s.dataset_id}.{t.table}" for t in written.tables]

    async def load(self, written: Written) -> LoadReport:
        try:
            client = self._connect()
            loaded_at = iso(datetime.now(UTC))
            plans: list[Reconciled] = []
            for table in written.tables:
                plan = await self._prepare(client, table, loaded_at)
                plans.append(plan)
                if plan.discards:
                    discards = discards_table(table.table, plan.discards)
                    plans.append(await self._prepare(client, discards, loaded_at))
            await self._ensure_ledger(client)
            if self.settings.insert_method == "streaming":
                await self._stream(client, written, plans)
            else:
                await self._load_jobs(client, written, plans)
        except Exception as exc:
            error = classify(exc, "load")
            if error.kind is OutcomeKind.RETRY:
                self._fields.clear()  # a table changed under us, or was dropped: look again
            raise error from None
        rows = sum(len(p.table.rows) for p in plans if p.table.discards_for is None)
        discarded = sum(len(p.discards) for p in plans)
        target = self.refs(written)[0] if written.tables else self.settings.dataset_id
        return LoadReport(target, rows=rows, discarded_values=discarded)

    async def committed(self, batch_id: str, refs: list[str]) -> bool:
        client = self._connect()
        params = [
            bigquery.ScalarQueryParameter("integration_id", "STRING", self.ctx.integration_id),
            bigquery.ScalarQueryParameter("batch_id", "STRING", batch_id),
        ]
        try:
            rows = await blocking(self._query, client, sql.committed_query(self._ledger()), params)
        except api_exceptions.NotFound:
            return False  # no ledger yet: nothing was ever committed
        except Exception as exc:
            raise classify(exc, "committed") from None
        return bool(rows and rows[0][0])

    async def check(self) -> list[CheckStep]:
        steps: list[CheckStep] = []
        name = f"eventrelay_check_{uuid.uuid4().hex[:12]}"
        ref = self._ref(name)
        columns = {"message_id": ColumnType.STRING, "loaded_at": ColumnType.TIMESTAMP}
        row = {"message_id": "eventrelay-check", "loaded_at": iso(datetime.now(UTC))}
        try:
            client = self._connect()
        except LoadError as exc:
            return [CheckStep("service account key", False, exc.message)]
        try:
            await blocking(self._create, client, name, columns, timedelta(hours=1))
            steps.append(CheckStep(f"create table {ref}", True))
            if self.settings.insert_method == "streaming":
                errors = await blocking(self._insert, client, name, [row], ["eventrelay-check"])
                steps.append(CheckStep(f"insertAll {ref}", not errors, str(errors or "") or None))
            else:
                body = encode_ndjson([row])
                fields = [sql.new_field(n, t) for n, t in columns.items()]
                await blocking(self._load_file, client, name, fields, body, "WRITE_APPEND")
                steps.append(CheckStep(f"load job into {ref}", True))
        except Exception as exc:
            steps.append(CheckStep(f"write {ref}", False, classify(exc, "check").message))
        try:
            await blocking(client.delete_table, ref, not_found_ok=True, retry=NO_RETRY)
            steps.append(CheckStep(f"drop table {ref}", True))
        except Exception as exc:
            if steps and steps[-1].ok:
                steps.append(CheckStep(f"drop table {ref}", False, classify(exc, "drop").message))
        return steps

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]

    # --- client ------------------------------------------------------------------------------

    def _connect(self) -> bigquery.Client:
        if self._client is not None:
            return self._client
        s = self.settings
        info = s.service_account()
        token = self.ctx.url("bigquery", "token")
        if token:  # a stand-in (EVENTRELAY_VENDOR_BASE_URLS), same path as Google's
            info["token_uri"] = token.rstrip("/") + "/token"
        info.setdefault("token_uri", "https://oauth2.googleapis.com/token")
        try:
            credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[BIGQUERY_SCOPE]
            )
        except (ValueError, KeyError) as exc:
            raise LoadError(
                OutcomeKind.AUTH,
                "bigquery_credentials",
                f"service account key: {type(exc).__name__}: {exc}",
                committed=False,
            ) from None
        endpoint = self.ctx.url("bigquery")
        self._client = bigquery.Client(
            project=s.project_id,
            credentials=credentials,
            location=s.location,
            client_options=ClientOptions(api_endpoint=endpoint) if endpoint else None,
        )
        return self._client

    def _ledger(self) -> str:
        return sql.quoted(self.settings.project_id, self.settings.dataset_id, sql.LEDGER)

    # --- streaming insert --------------------------------------------------------------------

    def _insert(
        self, client: bigquery.Client, table: str, rows: list[dict[str, Any]], ids: list[str]
    ) -> list[dict[str, Any]]:
        errors = client.insert_rows_json(
            self._ref(table),
            rows,
            row_ids=ids,
            skip_invalid_rows=False,
            ignore_unknown_values=False,
            retry=NO_RETRY,
            timeout=self.ctx.timeout,
        )
        return list(errors)

    async def _stream(
        self, client: bigquery.Client, written: Written, plans: list[Reconciled]
    ) -> None:
        upserts = [p for p in plans if p.table.upsert]
        if upserts:  # users rows replace by user id: only a MERGE can do that
            await self._load_jobs(client, written, upserts, ledger=False)
        for plan in plans:
            if plan.table.upsert:
                continue
            table = plan.table
            json_columns = sql.json_columns(table.columns)
            rows = [sql.stream_row(r, json_columns) for r in table.rows]
            ids = _row_ids(table)
            start = 0
            while start < len(rows):
                end, size = start, 0
                while end < len(rows) and end - start < STREAM_ROWS and size < STREAM_BYTES:
                    size += len(dumps(rows[end]))
                    end += 1
                errors = await blocking(
                    self._insert, client, table.table, rows[start:end], ids[start:end]
                )
                if errors:
                    raise _insert_errors(errors, table.message_ids[start:end])
                start = end
        record = {
            "integration_id": self.ctx.integration_id,
            "batch_id": written.id,
            "row_count": len(written.message_ids),
            "loaded_at": iso(datetime.now(UTC)),
        }
        entry = f"{self.ctx.integration_id}/{written.id}"
        errors = await blocking(self._insert, client, sql.LEDGER, [record], [entry])
        if errors:
            raise LoadError(OutcomeKind.RETRY, "bigquery_ledger", f"ledger: {errors}")

    # --- load jobs ---------------------------------------------------------------------------

    def _load_file(
        self,
        client: bigquery.Client,
        table: str,
        fields: list[bigquery.SchemaField],
        body: bytes,
        disposition: str,
    ) -> None:
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            schema=fields,
            write_disposition=disposition,
            create_disposition="CREATE_IF_NEEDED",
            max_bad_records=0,
        )
        job = client.load_table_from_file(
            io.BytesIO(body),
            self._ref(table),
            job_config=config,
            job_id_prefix="eventrelay_load_",
            num_retries=0,
            timeout=self.ctx.timeout,
        )
        job.result(timeout=self.ctx.timeout, retry=NO_RETRY)

    async def _load_jobs(
        self,
        client: bigquery.Client,
        written: Written,
        plans: list[Reconciled],
        ledger: bool = True,
    ) -> None:
        s = self.settings
        statements: list[str] = []
        guarded = sql.guard(self._ledger(), self.ctx.integration_id, written.id)
        staged: list[str] = []
        try:
            for plan in plans:
                table = plan.table
                if not table.rows:
                    continue
                names = list(dict.fromkeys(k for row in table.rows for k in row))
                target = self._fields.get(table.table) or {}
                fields = [_nullable(target[n]) for n in names if n in target]
                body = encode_ndjson(sql.load_row(r) for r in table.rows)
                stage = sql.staging_name(table.table, written.id)
                await blocking(self._create_staging, client, stage, fields)
                staged.append(stage)
                try:
                    await blocking(self._load_file, client, stage, fields, body, "WRITE_TRUNCATE")
                except api_exceptions.GoogleAPICallError as exc:
                    if set(reasons(exc)) <= {"invalid"} and reasons(exc):
                        raise load_error(exc.errors, body, table.message_ids, "load job") from None
                    raise
                statements.append(
                    sql.table_statement(
                        sql.quoted(s.project_id, s.dataset_id, table.table),
                        sql.quoted(s.project_id, s.dataset_id, stage),
                        [n for n in names if n in target],
                        key=table.key,
                        upsert=table.upsert,
                        dedup=s.load_mode == "dedup" and table.discards_for is None,
                        window_hours=s.dedup_window_hours,
                        guarded=guarded,
                        bounds=sql.day_bounds(table.rows),
                    )
                )
            if not statements:
                return
            # Without the ledger row: upserts ahead of a streamed batch (a MERGE by key, idempotent
            # by itself); the streamed rows and the ledger row follow.
            script = sql.transaction(
                statements,
                self._ledger(),
                self.ctx.integration_id,
                written.id,
                len(written.message_ids),
                record=ledger,
            )
            await blocking(self._query, client, script, [])
        finally:
            for stage in staged:
                with contextlib.suppress(Exception):  # it expires in a day anyway
                    await blocking(client.delete_table, self._ref(stage), not_found_ok=True)

    def _query(
        self, client: bigquery.Client, text: str, params: list[bigquery.ScalarQueryParameter]
    ) -> list[Any]:
        # An explicit job id, and job_retry None in both calls: the client would otherwise run
        # a failed query again by itself.
        job = client.query(
            text,
            job_config=bigquery.QueryJobConfig(query_parameters=params),
            job_id=f"eventrelay_{uuid.uuid4().hex}",
            retry=NO_RETRY,
            job_retry=None,
            timeout=self.ctx.timeout,
        )
        return list(job.result(timeout=self.ctx.timeout, retry=NO_RETRY, job_retry=None))


def _nullable(f: bigquery.SchemaField) -> bigquery.SchemaField:
    if f.mode == "REQUIRED":
        return bigquery.SchemaField(f.name, f.field_type, mode="NULLABLE", fields=f.fields)
    return f


def _row_ids(table: TableRows) -> list[str]:
    """insertIds: the message id; a discard row per value, so its column joins it."""
    if table.discards_for is None:
        return list(table.message_ids)
    return [f"{r['message_id']}/{r['table_name']}/{r['column_name']}" for r in table.rows]


def _insert_errors(errors: list[dict[str, Any]], message_ids: list[str]) -> LoadError:
    rows: dict[str, str] = {}
    for entry in errors:
        index = int(entry.get("index", -1))
        found = [e for e in entry.get("errors", []) if e.get("reason") != "stopped"]
        if found and 0 <= index < len(message_ids):
            first = found[0]
            rows[message_ids[index]] = f"{first.get('reason')}: {first.get('message', '')}"
    if rows:
        first = next(iter(rows.values()))
        return LoadError(OutcomeKind.DROP, "bigquery_invalid_row", f"insertAll: {first}", rows=rows)
    return LoadError(OutcomeKind.RETRY, "bigquery_insert_stopped", f"insertAll: {errors[:3]}")
