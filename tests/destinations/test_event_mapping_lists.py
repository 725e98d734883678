"""Issue 8: event_mapping values are checked at save time against each vendor's documented
closed list of event names; the 422 names the field config.event_mapping.<Segment event> and
lists the allowed names. Vendors that take custom event names (Meta, TikTok, The Trade Desk)
accept any name; GA4 checks its name rules; Google Ads its conversion action ids."""

from __future__ import annotations

from typing import Any

import pytest

from eventrelay.control.integrations import validate_config
from eventrelay.destinations import pinterest, registry, snapchat
from eventrelay.errors import ApiError

BASE: dict[str, dict[str, Any]] = {
    "pinterest": {"ad_account_id": "549755885175", "access_token": "t"},
    "snapchat": {"pixel_id": "a1b2c3d4", "access_token": "t"},
    "meta_capi": {"pixel_id": "1234567890", "access_token": "t"},
    "tiktok": {"pixel_id": "CABCDE1234567890", "access_token": "t"},
    "the_trade_desk": {"advertiser_id": "adv", "tracking_tag_id": "trk", "auth_token": "t"},
    "ga4": {"measurement_id": "G-ABC123XYZ", "api_secret": "t"},
    "google_ads": {
        "customer_id": "123-456-7890",
        "conversion_action_id": "987654321",
        "oauth_credentials": {"client_id": "c", "client_secret": "s", "refresh_token": "r"},
    },
}


def _refusal(type_: str, mapping: dict[str, str]) -> dict[str, str]:
    destination = registry.get(type_)
    assert destination is not None
    with pytest.raises(ApiError) as caught:
        validate_config(destination, {**BASE[type_], "event_mapping": mapping})
    assert caught.value.status == 422
    [detail] = caught.value.details or []
    return detail


# The 15 names of the Pinterest v5 spec's enum (pinterest/api-description v5/openapi.yaml).
PINTEREST_V5 = {
    "add_payment_info",
    "add_to_cart",
    "add_to_wishlist",
    "app_install",
    "checkout",
    "custom",
    "initiate_checkout",
    "lead",
    "page_visit",
    "search",
    "signup",
    "subscribe",
    "view_category",
    "view_content",
    "watch_video",
}


def test_pinterest_takes_only_the_v5_enum() -> None:
    assert pinterest.EVENT_NAMES == PINTEREST_V5
    # Names Segment lists but the v5 spec does not: refused (they were accepted before).
    for name in ("app_open", "contact", "start_trial", "submit_application"):
        detail = _refusal("pinterest", {"Demo Booked": name})
        assert detail["field"] == "config.event_mapping.Demo Booked"
        assert "checkout" in detail["message"] and "watch_video" in detail["message"]
    destination = registry.get("pinterest")
    assert destination is not None
    settings = validate_config(
        destination, {**BASE["pinterest"], "event_mapping": {"Demo Booked": "lead"}}
    )
    assert settings.event_mapping == {"Demo Booked": "lead"}  # type: ignore[attr-defined]


def test_snapchat_takes_only_its_event_names() -> None:
    detail = _refusal("snapchat", {"Order Completed": "PURCHASE", "Demo Booked": "DEMO"})
    assert detail["field"] == "config.event_mapping.Demo Booked"
    assert "CUSTOM_EVENT_1" in detail["message"] and "PURCHASE" in detail["message"]
    assert "CUSTOM_EVENT_5" in snapchat.EVENT_NAMES


def test_closed_lists_are_in_the_catalog_schema() -> None:
    for type_, names in (("pinterest", PINTEREST_V5), ("snapchat", snapchat.EVENT_NAMES)):
        destination = registry.get(type_)
        assert destination is not None
        schema = destination.Settings.model_json_schema()
        values = schema["properties"]["event_mapping"]["additionalProperties"]
        assert set(values["enum"]) == set(names)


@pytest.mark.parametrize("type_", ["meta_capi", "tiktok", "the_trade_desk"])
def test_vendors_with_custom_events_take_any_name(type_: str) -> None:
    destination = registry.get(type_)
    assert destination is not None
    validate_config(destination, {**BASE[type_], "event_mapping": {"Demo Booked": "DemoBooked"}})


def test_ga4_and_google_ads_name_the_key_at_fault() -> None:
    assert _refusal("ga4", {"Demo Booked": "1demo"})["field"] == "config.event_mapping.Demo Booked"
    detail = _refusal("google_ads", {"Lead": "not-digits"})
    assert detail["field"] == "config.event_mapping.Lead"
