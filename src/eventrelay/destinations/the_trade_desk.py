"""The Trade Desk Real-Time Conversions."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import Secret

TtdId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class TheTradeDeskSettings(VendorSettings):
    advertiser_id: TtdId
    tracking_tag_id: TtdId
    auth_token: Annotated[Secret, Field(description="TTD-Auth token.")]


class TheTradeDesk(Destination):
    type = "the_trade_desk"
    title = "The Trade Desk Real-Time Conversions"
    vendor = "The Trade Desk"
    api = "Real-Time Conversions"
    category = "advertising"
    docs_url = "https://partner.thetradedesk.com/v3/portal/data/doc/DataConversionEventsApi"
    Settings = TheTradeDeskSettings
    default_consent = ("advertising",)
    # No documented maximum: batch conservatively until confirmed.
    max_batch = 100


destination = TheTradeDesk()
