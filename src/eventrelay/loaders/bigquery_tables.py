"""The tables of a BigQuery integration: their columns (cached), created and extended as
batches need (cloud.google.com/bigquery/docs/managing-table-schemas: a column is added by
tables.patch with the full new schema; the table's etag guards against a concurrent change),
the staging tables of load jobs (expiring in a day) and the `eventrelay_loads` ledger."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from eventrelay.destinations.bigquery import Bigquery, BigquerySettings
from eventrelay.destinations.tables import ColumnType, Reconciled, TableRows, reconcile
from eventrelay.loaders import bigquery_sql as sql
from eventrelay.loaders.threads import blocking

# Each failed call is one visible attempt, retried with the backoff every destination shares
# (the client's own default retries for up to 10 minutes, hidden from metrics and failures).
NO_RETRY = bigquery.DEFAULT_RETRY.with_predicate(lambda exc: False)


class BigqueryTables:
    settings: BigquerySettings

    def __init__(self) -> None:
        # table -> its fields (None: the table does not exist); refreshed on schema errors.
        self._fields: dict[str, dict[str, bigquery.SchemaField] | None] = {}
        self._ledger_ready = False

    def _ref(self, table: str) -> str:
        return f"{self.settings.project_id}.{self.settings.dataset_id}.{table}"

    async def _fields_of(
        self, client: bigquery.Client, table: str
    ) -> dict[str, bigquery.SchemaField] | None:
        if table not in self._fields:
            try:
                found = await blocking(client.get_table, self._ref(table), retry=NO_RETRY)
                self._fields[table] = {f.name: f for f in found.schema}
            except api_exceptions.NotFound:
                self._fields[table] = None
        return self._fields[table]

    async def _prepare(
        self, client: bigquery.Client, rows: TableRows, loaded_at: str
    ) -> Reconciled:
        """Fit the batch to the table, creating the table or adding columns as needed."""
        for _ in range(3):
            fields = await self._fields_of(client, rows.table)
            existing = sql.column_types(fields.values()) if fields is not None else None
            plan = reconcile(rows, existing, Bigquery.dialect, loaded_at)
            try:
                if plan.create:
                    await blocking(self._create, client, rows.table, plan.add_columns, None)
                elif plan.add_columns:
                    await blocking(self._add_columns, client, rows.table, plan.add_columns)
                else:
                    return plan
            except (api_exceptions.Conflict, api_exceptions.PreconditionFailed):
                pass  # another worker changed the table first: read it again
            self._fields.pop(rows.table, None)
        return plan

    def _create(
        self,
        client: bigquery.Client,
        table: str,
        columns: dict[str, ColumnType],
        expires: timedelta | None,
    ) -> None:
        spec = bigquery.Table(self._ref(table), [sql.new_field(n, t) for n, t in columns.items()])
        partition = sql.partition_field(columns)
        if partition:
            spec.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field=partition
            )
        if expires is not None:
            spec.expires = datetime.now(UTC) + expires
        client.create_table(spec, retry=NO_RETRY)

    def _create_staging(
        self, client: bigquery.Client, table: str, fields: list[bigquery.SchemaField]
    ) -> None:
        """A staging table that expires in a day, should its batch never come back."""
        spec = bigquery.Table(self._ref(table), fields)
        spec.expires = datetime.now(UTC) + timedelta(days=1)
        client.create_table(spec, exists_ok=True, retry=NO_RETRY)

    def _add_columns(
        self, client: bigquery.Client, table: str, columns: dict[str, ColumnType]
    ) -> None:
        current = client.get_table(self._ref(table), retry=NO_RETRY)  # its etag guards the patch
        known = {f.name for f in current.schema}
        added = [sql.new_field(n, t) for n, t in columns.items() if n not in known]
        if added:
            current.schema = [*current.schema, *added]
            client.update_table(current, ["schema"], retry=NO_RETRY)

    async def _ensure_ledger(self, client: bigquery.Client) -> None:
        if self._ledger_ready:
            return
        if await self._fields_of(client, sql.LEDGER) is None:
            with contextlib.suppress(api_exceptions.Conflict):  # another worker made it
                await blocking(self._create_ledger, client)
        self._ledger_ready = True

    def _create_ledger(self, client: bigquery.Client) -> None:
        spec = bigquery.Table(self._ref(sql.LEDGER), sql.ledger_fields())
        spec.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY,
            field="loaded_at",
            expiration_ms=sql.LEDGER_DAYS * 86_400_000,
        )
        client.create_table(spec, retry=NO_RETRY)
