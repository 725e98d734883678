"""Snowflake, Snowpipe."""

from __future__ import annotations

from typing import Annotated

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, SecretStr, field_validator, model_validator

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import ENDPOINT, Secret, SqlIdentifier


class SnowflakeSettings(VendorSettings):
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


class Snowflake(Destination):
    type = "snowflake"
    title = "Snowflake"
    vendor = "Snowflake"
    api = "Snowpipe"
    category = "warehouse"
    docs_url = "https://docs.snowflake.com/en/user-guide/data-load-snowpipe-rest-apis"
    Settings = SnowflakeSettings
    max_batch = 5000


destination = Snowflake()
