"""TikTok Events API 2.0."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import Secret


class TiktokSettings(VendorSettings):
    pixel_id: Annotated[
        str, Field(pattern=r"^[A-Z0-9]{8,32}$", description="Pixel code, e.g. CXXXXXXXXXX.")
    ]
    access_token: Annotated[Secret, Field(description="Events API access token.")]


class Tiktok(Destination):
    type = "tiktok"
    title = "TikTok Events API"
    vendor = "TikTok"
    api = "Events API"
    category = "advertising"
    docs_url = "https://business-api.tiktok.com/portal/docs?id=1771100865818625"
    api_version = "v1.3"
    Settings = TiktokSettings
    default_consent = ("advertising",)
    max_batch = 1000


destination = Tiktok()
