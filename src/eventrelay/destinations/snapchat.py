"""Snap Conversions API v3."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import Secret


class SnapchatSettings(VendorSettings):
    pixel_id: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$", description="Snap Pixel id (or Snap App id).")
    ]
    access_token: Annotated[Secret, Field(description="Conversions API token.")]


class Snapchat(Destination):
    type = "snapchat"
    title = "Snapchat Conversions API"
    vendor = "Snapchat"
    api = "Conversions API"
    category = "advertising"
    docs_url = "https://developers.snap.com/api/marketing-api/Conversions-API"
    api_version = "v3"
    Settings = SnapchatSettings
    default_consent = ("advertising",)
    max_batch = 2000


destination = Snapchat()
