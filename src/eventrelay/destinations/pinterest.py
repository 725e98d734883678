"""Pinterest Conversions API (API v5)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import Secret


class PinterestSettings(VendorSettings):
    ad_account_id: Annotated[str, Field(pattern=r"^\d{1,32}$", description="Ad account id.")]
    access_token: Annotated[Secret, Field(description="Conversion access token.")]


class Pinterest(Destination):
    type = "pinterest"
    title = "Pinterest Conversions API"
    vendor = "Pinterest"
    api = "Conversions API"
    category = "advertising"
    docs_url = "https://developers.pinterest.com/docs/api-features/conversion-overview/"
    api_version = "v5"
    Settings = PinterestSettings
    default_consent = ("advertising",)
    max_batch = 1000


destination = Pinterest()
