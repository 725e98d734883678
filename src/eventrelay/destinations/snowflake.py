"""Snowflake: the batch staged as a file and loaded with COPY INTO, the statement Snowpipe runs,
or (`load_method: snowpipe`) by Snowpipe itself through a pipe eventrelay creates
(`eventrelay.loaders.snowpipe`).

The writer is the warehouse one (`warehouse.py`): the seed's `table` with core columns and
properties/traits/context as VARIANT, or Segment's layout. The loader
(`eventrelay.loaders.snowflake`, snowflake-connector-python with key-pair auth) PUTs the batch as
gzip NDJSON into the stage of a staging table of its own, COPY INTOs it
(docs.snowflake.com/en/sql-reference/sql/copy-into-table), and moves it into the table in one
transaction with a row in the `EVENTRELAY_LOADS` ledger: rows whose message_id the table already
holds (received within dedup_window_hours) are left out, or all are inserted in `append` mode.

Names: unquoted Snowflake identifiers are upper case; eventrelay quotes every name in upper case
("MESSAGE_ID"), which reads the same as unquoted and is safe for reserved words (a property named
`order`). Limits (docs.snowflake.com/en/sql-reference/identifiers-syntax,
docs.snowflake.com/en/sql-reference/data-types-text): identifiers up to 255 characters, VARCHAR
and VARIANT values up to 16 MB; larger values go to `_discards`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, SecretStr, field_validator, model_validator

from eventrelay.destinations.base import VendorSettings
from eventrelay.destinations.fields import ENDPOINT, Secret, SqlIdentifier
from eventrelay.destinations.loading import WarehouseSettings
from eventrelay.destinations.tables import Dialect
from eventrelay.destinations.warehouse import WarehouseDestination


class SnowflakeSettings(WarehouseSettings):
    account: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
            description="Account identifier, e.g. xy12345.us-east-1 or orgname-account.",
            # It names the host: https://<account>.snowflakecomputing.com
            json_schema_extra=ENDPOINT,
        ),
    ]
    database: SqlIdentifier
    schema_: Annotated[SqlIdentifier, Field(alias="schema")]
    table: SqlIdentifier
    user: SqlIdentifier
    private_key: Annotated[Secret, Field(description="PEM private key for key-pair auth.")]
    private_key_passphrase: Secret | None = None
    warehouse: SqlIdentifier | None = None
    role: SqlIdentifier | None = None
    load_mode: Annotated[
        Literal["dedup", "append"],
        Field(
            description="dedup: an event whose message_id is already in the table (received"
            " within dedup_window_hours) is not loaded again, the first load wins; append: every"
            " event is inserted (cheaper; a client's resent event may appear twice)."
        ),
    ] = "dedup"
    load_method: Annotated[
        Literal["copy", "snowpipe"],
        Field(
            description="copy: PUT and COPY INTO in eventrelay's own session (dedup or append);"
            " snowpipe: a pipe eventrelay creates, fed through the Snowpipe REST API (append"
            " only, layout single; no warehouse needed for the load itself)."
        ),
    ] = "copy"

    model_config = {"populate_by_name": True, "serialize_by_alias": True}

    @field_validator("private_key")
    @classmethod
    def _check_pem(cls, value: SecretStr) -> SecretStr:
        pem = value.get_secret_value()
        if pem == "***":
            return value
        try:
            load_pem_private_key(pem.encode(), password=None)
        except TypeError:
            pass  # encrypted: checked with the passphrase below
        except ValueError:
            raise ValueError("must be a PEM private key (-----BEGIN PRIVATE KEY-----)") from None
        return value

    @model_validator(mode="after")
    def _check_snowpipe(self) -> SnowflakeSettings:
        if self.load_method != "snowpipe":
            return self
        if self.layout != "single":
            raise ValueError(
                "load_method snowpipe needs layout single (a pipe cannot upsert users)"
            )
        if "load_mode" in self.model_fields_set and self.load_mode != "append":
            raise ValueError("load_method snowpipe loads append only: load_mode must be append")
        self.load_mode = "append"
        return self

    @model_validator(mode="after")
    def _check_passphrase(self) -> SnowflakeSettings:
        pem = self.private_key.get_secret_value()
        passphrase: SecretStr | None = self.private_key_passphrase
        if pem == "***" or (passphrase and passphrase.get_secret_value() == "***"):
            return self
        password = passphrase.get_secret_value().encode() if passphrase else None
        try:
            load_pem_private_key(pem.encode(), password=password)
        except (ValueError, TypeError):
            raise ValueError(
                "private_key is encrypted: private_key_passphrase is missing or wrong"
            ) from None
        return self


class Snowflake(WarehouseDestination):
    type = "snowflake"
    title = "Snowflake"
    vendor = "Snowflake"
    api = "COPY INTO (Snowpipe's load statement)"
    docs_url = "https://docs.snowflake.com/en/sql-reference/sql/copy-into-table"
    Settings = SnowflakeSettings
    extra = "snowflake"
    extra_modules = ("snowflake.connector",)
    dialect = Dialect(
        max_identifier_bytes=255,
        max_string_bytes=16_777_216,
        max_json_bytes=16_000_000,
    )

    def table_name(self, settings: VendorSettings) -> str:
        assert isinstance(settings, SnowflakeSettings)
        return settings.table.lower()


destination = Snowflake()
