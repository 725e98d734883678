"""Google Analytics 4, Measurement Protocol."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import Secret


class Ga4Settings(VendorSettings):
    measurement_id: Annotated[
        str, Field(pattern=r"^G-[A-Z0-9]{4,20}$", description="Web data stream id, G-XXXXXXXXXX.")
    ]
    api_secret: Annotated[Secret, Field(description="Measurement Protocol API secret.")]


class Ga4(Destination):
    type = "ga4"
    title = "Google Analytics 4"
    vendor = "Google"
    api = "Measurement Protocol"
    category = "analytics"
    docs_url = "https://developers.google.com/analytics/devguides/collection/protocol/ga4"
    Settings = Ga4Settings
    default_consent = ("analytics",)
    max_batch = 25
    max_batch_bytes = 130_000


destination = Ga4()
