"""Meta (Facebook) Conversions API."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import Secret


class MetaCapiSettings(VendorSettings):
    pixel_id: Annotated[
        str, Field(pattern=r"^\d{5,32}$", description="Pixel (dataset) id, digits.")
    ]
    access_token: Annotated[Secret, Field(description="System-user access token.")]


class MetaCapi(Destination):
    type = "meta_capi"
    title = "Meta Conversions API"
    vendor = "Meta / Facebook"
    api = "Conversions API"
    category = "advertising"
    docs_url = "https://developers.facebook.com/docs/marketing-api/conversions-api"
    api_version = "v24.0"
    Settings = MetaCapiSettings
    default_consent = ("advertising",)
    max_batch = 1000


destination = MetaCapi()
