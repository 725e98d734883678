"""LinkedIn Conversions API."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import Secret


class LinkedinSettings(VendorSettings):
    account_id: Annotated[str, Field(pattern=r"^\d{1,32}$", description="Ad account id.")]
    access_token: Annotated[Secret, Field(description="OAuth access token (rw_conversions).")]


class Linkedin(Destination):
    type = "linkedin"
    title = "LinkedIn Conversions API"
    vendor = "LinkedIn"
    api = "Conversions API"
    category = "advertising"
    docs_url = (
        "https://learn.microsoft.com/linkedin/marketing/integrations/ads-reporting/conversions-api"
    )
    api_version = "202603"
    Settings = LinkedinSettings
    default_consent = ("advertising",)
    max_batch = 5000


destination = Linkedin()
