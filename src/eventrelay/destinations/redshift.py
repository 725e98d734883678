"""Amazon Redshift, COPY from S3 staging, then delete+insert into the target.

Per batch (the loader is `eventrelay.loaders.redshift`): each table's rows are staged as a gzip
NDJSON object in `s3_staging_bucket`, then in one transaction:
`CREATE TEMP TABLE stage (LIKE target)`, `COPY stage FROM 's3://...' FORMAT AS JSON 'auto' GZIP
TIMEFORMAT 'auto'`, in dedup mode `DELETE FROM target USING stage` on message_id within the
window, `INSERT INTO target SELECT ... FROM stage`, and a row in `_eventrelay_loads` (the
ledger that makes a replayed batch a no-op). Columns are added before the transaction, one
`ALTER TABLE ... ADD COLUMN` each.

Verified against Redshift's documentation (not against a cluster: none is reachable here):
- COPY JSON 'auto' maps top-level keys to column names and loads nested values into SUPER
  columns; a JSON object in COPY is at most 4 MB: docs.aws.amazon.com/redshift/latest/dg/copy_json.html
- TIMEFORMAT 'auto' reads ISO 8601 such as 2019-02-11T05:09:12.195Z:
  docs.aws.amazon.com/redshift/latest/dg/automatic-recognition.html
- MERGE needs a WHEN MATCHED clause besides WHEN NOT MATCHED (or REMOVE DUPLICATES) and is
  implemented over a temp table (docs.aws.amazon.com/redshift/latest/dg/r_MERGE.html), so the
  delete+insert from a staging table that AWS documents for merges is used
  (docs.aws.amazon.com/redshift/latest/dg/merge-specify-a-column-list.html).
- ALTER TABLE ADD COLUMN takes one column per statement and has no IF NOT EXISTS:
  docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html
- VARCHAR holds at most 65535 bytes; identifiers at most 127 bytes:
  docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html, r_names.html
- a failed COPY names the rows in STL_LOAD_ERRORS (query = pg_last_copy_id()):
  docs.aws.amazon.com/redshift/latest/dg/r_STL_LOAD_ERRORS.html
- COPY reads S3 with IAM_ROLE (or `IAM_ROLE default`, the cluster's default role) or
  ACCESS_KEY_ID/SECRET_ACCESS_KEY, and REGION:
  docs.aws.amazon.com/redshift/latest/dg/copy-parameters-authorization.html
The driver is psycopg 3 (the PostgreSQL wire protocol Redshift speaks); Amazon's
redshift_connector cannot connect to PostgreSQL, which stands in for Redshift in the tests.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from eventrelay.destinations.base import VendorSettings
from eventrelay.destinations.fields import (
    ENDPOINT,
    AwsRegion,
    Hostname,
    Port,
    S3Bucket,
    Secret,
    SqlIdentifier,
)
from eventrelay.destinations.loading import WarehouseSettings
from eventrelay.destinations.tables import ColumnType, Dialect, identifier
from eventrelay.destinations.warehouse import WarehouseDestination

DIALECT = Dialect(
    max_identifier_bytes=127,
    max_string_bytes=65535,
    # A value of a SUPER column; a row of COPY JSON is at most 4 MB.
    max_json_bytes=1_000_000,
)
TYPE_NAMES: dict[ColumnType, str] = {
    ColumnType.STRING: "VARCHAR(65535)",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.FLOAT: "DOUBLE PRECISION",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.TIMESTAMP: "TIMESTAMPTZ",
    ColumnType.JSON: "SUPER",
}
# information_schema.columns.data_type -> the type eventrelay manages; others are left alone.
CATALOG_TYPES: dict[str, ColumnType] = {
    "character varying": ColumnType.STRING,
    "bigint": ColumnType.INTEGER,
    "double precision": ColumnType.FLOAT,
    "boolean": ColumnType.BOOLEAN,
    "timestamp with time zone": ColumnType.TIMESTAMP,
    "super": ColumnType.JSON,
}
LEDGER = "_eventrelay_loads"
_REGION_IN_HOST = re.compile(
    r"\.([a-z]{2}(?:-gov)?-[a-z]+-\d)\.redshift(?:-serverless)?\.amazonaws\.com$"
)


class RedshiftSettings(WarehouseSettings):
    host: Annotated[Hostname, Field(json_schema_extra=ENDPOINT)]
    port: Annotated[Port, Field(json_schema_extra=ENDPOINT)] = 5439
    database: SqlIdentifier
    schema_: Annotated[SqlIdentifier, Field(alias="schema")]
    table: SqlIdentifier
    user: SqlIdentifier
    password: Secret
    s3_staging_bucket: Annotated[S3Bucket, Field(json_schema_extra=ENDPOINT)]
    s3_staging_prefix: Annotated[
        str,
        Field(
            max_length=512, pattern=r"^[^\x00-\x1f]*$", description="Key prefix of staged files."
        ),
    ] = "eventrelay-staging/"
    s3_region: Annotated[
        AwsRegion | None,
        Field(
            json_schema_extra=ENDPOINT,
            description="Region of the staging bucket; default: the cluster's, from host.",
        ),
    ] = None
    iam_role: Annotated[
        str | None,
        Field(
            pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@/_-]{1,512}$",
            description="Role the cluster assumes for COPY (IAM_ROLE); else the access keys;"
            " with neither, the cluster's default IAM role (IAM_ROLE default).",
        ),
    ] = None
    aws_access_key_id: Annotated[
        str | None,
        Field(
            pattern=r"^[A-Z0-9]{16,128}$",
            description="Writes the staged files (and reads them in COPY without iam_role);"
            " without them, the worker's AWS credential chain writes them.",
        ),
    ] = None
    aws_secret_access_key: Secret | None = None
    sslmode: Literal["require", "verify-ca", "verify-full", "prefer", "disable"] = "require"

    model_config = {"populate_by_name": True, "serialize_by_alias": True}

    @model_validator(mode="after")
    def _check_credentials(self) -> RedshiftSettings:
        if bool(self.aws_access_key_id) != bool(self.aws_secret_access_key):
            raise ValueError("aws_access_key_id and aws_secret_access_key go together")
        return self

    @property
    def region(self) -> str:
        if self.s3_region:
            return self.s3_region
        match = _REGION_IN_HOST.search(self.host)
        return match.group(1) if match else "us-east-1"


def quote(name: str) -> str:
    """A quoted identifier (names come from `identifier`, already lower-case snake_case)."""
    return '"' + name.replace('"', '""') + '"'


class Redshift(WarehouseDestination):
    type = "redshift"
    title = "Amazon Redshift"
    vendor = "Amazon Redshift"
    api = "COPY"
    docs_url = "https://docs.aws.amazon.com/redshift/latest/dg/r_COPY.html"
    Settings = RedshiftSettings
    dialect = DIALECT
    extra = "redshift"
    extra_modules = ("psycopg", "aiobotocore")

    def table_name(self, settings: VendorSettings) -> str:
        assert isinstance(settings, RedshiftSettings)
        return identifier(settings.table, DIALECT.max_identifier_bytes)


destination = Redshift()
