"""Amazon Redshift, COPY from S3 staging."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import ENDPOINT, Hostname, Port, S3Bucket, Secret, SqlIdentifier


class RedshiftSettings(VendorSettings):
    host: Annotated[Hostname, Field(json_schema_extra=ENDPOINT)]
    port: Annotated[Port, Field(json_schema_extra=ENDPOINT)] = 5439
    database: SqlIdentifier
    schema_: Annotated[SqlIdentifier, Field(alias="schema")]
    table: SqlIdentifier
    user: SqlIdentifier
    password: Secret
    s3_staging_bucket: Annotated[S3Bucket, Field(json_schema_extra=ENDPOINT)]

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class Redshift(Destination):
    type = "redshift"
    title = "Amazon Redshift"
    vendor = "Amazon Redshift"
    api = "COPY"
    category = "warehouse"
    docs_url = "https://docs.aws.amazon.com/redshift/latest/dg/r_COPY.html"
    Settings = RedshiftSettings
    max_batch = 10_000


destination = Redshift()
