"""Google BigQuery: streaming insert (default) or load jobs with a MERGE on message_id.

The writer is the warehouse one (`warehouse.py`): the seed's table (`table_id`) with core
columns and properties/traits/context as BigQuery JSON, or Segment's layout. The loader
(`eventrelay.loaders.bigquery`) authenticates with the service account key, creates tables
(day-partitioned on `timestamp`) and new columns, and loads a batch either way:

- `insert_method: streaming`: `tabledata.insertAll` with `insertId` = messageId (the seed's
  "Streaming Insert"), at most 500 rows per request as Google recommends
  (cloud.google.com/bigquery/docs/streaming-data-into-bigquery);
- `insert_method: load_job`: the batch as newline-delimited JSON in a load job into a staging
  table, then one multi-statement transaction: MERGE (or INSERT in `append` mode) into the
  table and a row in the `eventrelay_loads` ledger, so a batch commits once
  (cloud.google.com/bigquery/docs/transactions). Load jobs are free; the MERGE is a query.

Limits (cloud.google.com/bigquery/quotas): column names up to 300 characters, table names up
to 1,024 bytes, 10 MB per insertAll request and row; values above 8 MB go to `_discards`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator

from eventrelay.destinations.base import VendorSettings
from eventrelay.destinations.fields import ENDPOINT, Secret
from eventrelay.destinations.loading import WarehouseSettings
from eventrelay.destinations.tables import Dialect
from eventrelay.destinations.warehouse import WarehouseDestination

BIGQUERY_SCOPE = "https://www.googleapis.com/auth/bigquery"
TOKEN_URI = "https://oauth2.googleapis.com/token"


class BigquerySettings(WarehouseSettings):
    project_id: Annotated[
        str,
        Field(
            pattern=r"^([a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,61}[a-z0-9]$",
            description="GCP project id.",
            # Another project is another owner's storage: the service account's credentials
            # must not be carried there by an edit that keeps them.
            json_schema_extra=ENDPOINT,
        ),
    ]
    dataset_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,1024}$")]
    table_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,1024}$")]
    service_account_json: Annotated[
        Secret,
        Field(
            description="Service account key file (JSON); the account needs BigQuery Data Editor"
            " on the dataset and BigQuery Job User on the project."
        ),
    ]
    insert_method: Annotated[
        Literal["streaming", "load_job"],
        Field(
            description="streaming: insertAll with insertId = messageId (rows queryable at once;"
            " Google's dedup on insertId is best effort); load_job: a free load job into a staging"
            " table, then MERGE on message_id in a transaction (exactly once per message_id"
            " within dedup_window_hours)."
        ),
    ] = "streaming"
    location: Annotated[
        str | None,
        Field(
            pattern=r"^[A-Za-z0-9-]{2,40}$",
            description="The dataset's location (e.g. US, EU, europe-west1), for the jobs.",
        ),
    ] = None
    load_mode: Annotated[
        Literal["dedup", "append"],
        Field(
            description="dedup: with load_job, an event whose message_id is already in the table"
            " (received within dedup_window_hours) is not loaded again; the first load wins, as"
            " rows streamed in the last 30 minutes cannot be updated. append: plain inserts."
        ),
    ] = "dedup"

    @field_validator("service_account_json")
    @classmethod
    def _check_service_account(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if text == "***":
            return value
        try:
            info = json.loads(text)
        except ValueError:
            raise ValueError("must be the service account key file's JSON") from None
        if not isinstance(info, dict):
            raise ValueError("must be a JSON object")
        if info.get("type") != "service_account":
            raise ValueError('must have "type": "service_account"')
        missing = [k for k in ("client_email", "private_key") if not info.get(k)]
        if missing:
            raise ValueError(f"is missing {', '.join(missing)}")
        return value

    def service_account(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(self.service_account_json.get_secret_value())
        return info


class Bigquery(WarehouseDestination):
    type = "bigquery"
    title = "Google BigQuery"
    vendor = "Google BigQuery"
    api = "Streaming Insert"
    docs_url = "https://cloud.google.com/bigquery/docs/reference/rest/v2/tabledata/insertAll"
    api_version = "v2"
    Settings = BigquerySettings
    extra = "bigquery"
    extra_modules = ("google.cloud.bigquery", "google.oauth2")
    # cloud.google.com/bigquery/quotas: column names 300 characters, table names 1,024 bytes;
    # a row at most 10 MB in insertAll, so a value gets 8 MB.
    dialect = Dialect(
        max_identifier_bytes=300,
        max_string_bytes=8_000_000,
        max_json_bytes=8_000_000,
        max_table_name_bytes=1024,
    )

    def table_name(self, settings: VendorSettings) -> str:
        assert isinstance(settings, BigquerySettings)
        return settings.table_id


destination = Bigquery()
