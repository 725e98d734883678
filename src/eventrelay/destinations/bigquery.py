"""Google BigQuery, streaming insert."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, SecretStr, field_validator

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import Secret


class BigquerySettings(VendorSettings):
    project_id: Annotated[
        str,
        Field(
            pattern=r"^([a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,61}[a-z0-9]$",
            description="GCP project id.",
        ),
    ]
    dataset_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,1024}$")]
    table_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,1024}$")]
    service_account_json: Annotated[
        Secret, Field(description="Service account key file (JSON) with BigQuery insert rights.")
    ]

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


class Bigquery(Destination):
    type = "bigquery"
    title = "Google BigQuery"
    vendor = "Google BigQuery"
    api = "Streaming Insert"
    category = "warehouse"
    docs_url = "https://cloud.google.com/bigquery/docs/reference/rest/v2/tabledata/insertAll"
    api_version = "v2"
    Settings = BigquerySettings
    max_batch = 500
    max_batch_bytes = 9_000_000


destination = Bigquery()
