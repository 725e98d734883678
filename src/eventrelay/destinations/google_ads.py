"""Google Ads, click conversion upload with enhanced conversions."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import NonEmpty, Secret

CustomerId = Annotated[
    str,
    Field(pattern=r"^\d{3}-?\d{3}-?\d{4}$", description="10-digit customer id, e.g. 123-456-7890."),
]


class OAuthCredentials(VendorSettings):
    client_id: NonEmpty
    client_secret: Secret
    refresh_token: Secret


class GoogleAdsSettings(VendorSettings):
    customer_id: CustomerId
    conversion_action_id: Annotated[str, Field(pattern=r"^\d{1,20}$")]
    oauth_credentials: OAuthCredentials
    login_customer_id: Annotated[
        CustomerId | None, Field(description="Manager (MCC) account id, when used.")
    ] = None


class GoogleAds(Destination):
    type = "google_ads"
    title = "Google Ads Enhanced Conversions"
    vendor = "Google"
    api = "Enhanced Conversions"
    category = "advertising"
    docs_url = "https://developers.google.com/google-ads/api/docs/conversions/upload-clicks"
    api_version = "v22"
    Settings = GoogleAdsSettings
    default_consent = ("advertising",)
    max_batch = 2000


destination = GoogleAds()
