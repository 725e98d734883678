"""Pinterest Conversions API (API v5).

Facts: ../shared/reference/vendors-ads.md section 5 (v5 OpenAPI spec, rate-limit docs).
POST https://api.pinterest.com/v5/ad_accounts/{ad_account_id}/events with {"data": [...]},
1 to 1,000 events, `Authorization: Bearer <conversion token>`. Pinterest reports failures per
event (200 with `events[i].status == "failed"`), so one bad event never holds up the others.

Event names: the v5 spec's closed enum of 15 ("Please use the right event_name; otherwise the
event will not be accepted", pinterest/api-description v5/openapi.yaml, v5.23.0, commit
c05b189); a mapping to another name is refused when the integration is saved. quantity and
num_items are integers (int64 in the spec). A value without a currency is sent as is: the spec
says Pinterest then uses "the advertiser's currency set during account creation"; the
integration's default_currency, when set, is sent instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from eventrelay.destinations.base import (
    BuildContext,
    BuildResult,
    Destination,
    EventRecord,
    HttpRequest,
    HttpResponse,
    Item,
    Notes,
    Outcome,
    OutcomeKind,
    VendorSettings,
    bearer,
    collect,
    json_requests,
)
from eventrelay.destinations.classify import body_text, classify_status, json_body, refused
from eventrelay.destinations.common import pii
from eventrelay.destinations.common import segment as seg
from eventrelay.destinations.common.normalize import sha256
from eventrelay.destinations.common.numbers import count, decimal_string
from eventrelay.destinations.common.paths import get, text
from eventrelay.destinations.fields import (
    MAPPING,
    DefaultCountry,
    DefaultCurrency,
    MappingKey,
    Secret,
    name_field,
    one_of,
)

BASE_URL = "https://api.pinterest.com"

# Segment's presets (reference 5.5) [impl]; Payment Info Entered and Product Added to Wishlist
# are the spec events with an obvious Pinterest name.
DEFAULT_EVENTS = {
    "Order Completed": "checkout",
    "Product Added": "add_to_cart",
    "Checkout Started": "initiate_checkout",
    "Products Searched": "search",
    "Product Viewed": "view_content",
    "Signed Up": "signup",
    "Product Category Viewed": "view_category",
    "Generate Lead": "lead",
    "Payment Info Entered": "add_payment_info",
    "Product Added to Wishlist": "add_to_wishlist",
    seg.PAGE: "page_visit",
}
# The v5 spec's enum (see the module comment).
EVENT_NAMES = frozenset(
    {
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
)
PinterestEventName = Annotated[str, name_field(EVENT_NAMES), AfterValidator(one_of(EVENT_NAMES))]
ACTION_SOURCES = ("web", "app_android", "app_ios", "offline")
SUPPORTED_TYPES = ("track", "page", "screen")


class PinterestSettings(VendorSettings):
    ad_account_id: Annotated[str, Field(pattern=r"^\d{1,32}$", description="Ad account id.")]
    access_token: Annotated[Secret, Field(description="Conversion access token.")]
    api_version: Annotated[
        str, Field(pattern=r"^v\d{1,2}$", description="API version, e.g. v5.")
    ] = "v5"
    action_source: Literal["web", "app_android", "app_ios", "offline"] = "web"
    event_mapping: Annotated[dict[MappingKey, PinterestEventName], MAPPING] = {}
    custom_events: Annotated[
        bool,
        Field(
            description="Send track events with no mapping as Pinterest `custom` events "
            "(otherwise they are skipped as unmapped)."
        ),
    ] = True
    default_country: DefaultCountry = None
    default_currency: DefaultCurrency = None


# --- user_data -------------------------------------------------------------------------------


def user_data(
    event: dict[str, Any], settings: PinterestSettings, notes: Notes | None = None
) -> dict[str, Any]:
    """Hashed by `pii.PINTEREST` (reference 5.4), as arrays; IP, user agent and click id in
    clear."""
    read = seg.attributes(event, settings.default_country, notes)
    data: dict[str, Any] = {
        **pii.PINTEREST.apply(read, arrays=True),
        # Not hashed (reference 5.4).
        "client_ip_address": seg.ip(event),
        "client_user_agent": seg.user_agent(event),
        # The epik click id (`&epik=` URL param or the `_epik` cookie), kept exactly.
        "click_id": seg.click_id(event, "epik") or seg.click_id(event, "_epik"),
    }
    return {k: v for k, v in data.items() if v}


def _enough_to_match(users: dict[str, Any]) -> bool:
    """Pinterest requires em, hashed_maids, or client_ip_address with client_user_agent."""
    return bool(
        users.get("em")
        or users.get("hashed_maids")
        or (users.get("client_ip_address") and users.get("client_user_agent"))
    )


# --- custom_data -----------------------------------------------------------------------------


def custom_data(
    event: dict[str, Any], name: str, settings: PinterestSettings, notes: Notes
) -> dict[str, Any]:
    items = [p for p in seg.products(event) if p.id]
    value, currency = seg.money(event, settings.default_currency, notes, fallback=True)
    data: dict[str, Any] = {
        "currency": currency,
        "value": decimal_string(value) if value is not None else None,  # a string, per the spec
        "order_id": seg.order_id(event),
    }
    if items:
        data["content_ids"] = [p.id for p in items]
        data["contents"] = [
            {
                k: v
                for k, v in {
                    "id": p.id,
                    "item_price": decimal_string(p.price) if p.price is not None else None,
                    "quantity": count(p.quantity),
                }.items()
                if v is not None
            }
            for p in items
        ]
        data["num_items"] = seg.quantity(event)
    if name == "search":
        data["search_string"] = seg.search_query(event)
    if seg.limited_data_use(event):
        # Privacy-law flags, comma-separated; "LDP" = limited data processing (reference 5.7).
        data["opt_out_type"] = "LDP"
    return {k: v for k, v in data.items() if v is not None and v != [] and v != ""}


def opted_out(event: dict[str, Any]) -> bool:
    """`opt_out` means the user opted out of tracking (web) or enabled Limit Ad Tracking (app):
    the Segment device flag adTrackingEnabled=false, or properties.opt_out=true. Limited data
    use is a different signal (opt_out_type "LDP") and does not set it."""
    return get(event, "context.device.adTrackingEnabled") is False or (
        get(event, "properties.opt_out") is True
    )


# --- the destination -------------------------------------------------------------------------


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
    max_batch = 1000  # `data`: 1-1,000 events
    delivers = True

    def url(self, settings: PinterestSettings, ctx: BuildContext) -> str:
        path = f"{BASE_URL}/{settings.api_version}/ad_accounts/{settings.ad_account_id}/events"
        # ?test=true: Pinterest validates and answers as usual but records nothing.
        return ctx.url(path + ("?test=true" if ctx.test_mode else ""))

    def event_name(self, event: dict[str, Any], settings: PinterestSettings) -> str | None:
        name = seg.map_event(event, DEFAULT_EVENTS, settings.event_mapping, custom_events=False)
        if name is None and settings.custom_events and event.get("type") == "track":
            return "custom"
        return name

    def item(
        self, record: EventRecord, settings: PinterestSettings, now: int, notes: Notes
    ) -> Item | str:
        """One `data` entry, or the reason the event is skipped."""
        event = record.data
        name = self.event_name(event, settings)
        if not name:
            return "unmapped"
        users = user_data(event, settings, notes)
        if not _enough_to_match(users):
            return "missing_user_data"  # Pinterest would refuse it
        source = text(event, "properties.action_source")
        item: Item = {
            "event_name": name,
            "action_source": source if source in ACTION_SOURCES else settings.action_source,
            "event_time": seg.timestamp_seconds(event) or now,
            # The messageId: the same on every retry, so Pinterest deduplicates resends.
            "event_id": record.message_id or sha256(record.raw.decode()),
            "opt_out": opted_out(event),
            "user_data": users,
        }
        url = seg.page_url(event)
        if url:
            item["event_source_url"] = url
        custom = custom_data(event, name, settings, notes)
        if custom:
            item["custom_data"] = custom
        return item

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        assert isinstance(settings, PinterestSettings)
        now = int(ctx.now.timestamp())
        result, items = collect(
            events, lambda record, notes: self.item(record, settings, now, notes), SUPPORTED_TYPES
        )
        result.requests = json_requests(
            self.url(settings, ctx),
            bearer(settings.access_token.get_secret_value()),
            items,
            self.max_batch,
        )
        return result

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        count = len(request.event_indices)
        body = json_body(response)
        body = body if isinstance(body, dict) else {}
        if 200 <= response.status < 300:
            return _per_event(body.get("events"), count) or [Outcome(OutcomeKind.SUCCESS)]
        code = body.get("code")
        message = body.get("message")
        reason = f"pinterest_{code}" if isinstance(code, int) else f"http_{response.status}"
        message = message if isinstance(message, str) and message else body_text(response)
        if response.status == 422:
            # "Not all events were successfully processed": use per-event statuses when the
            # DetailedError carries them; `details` is an untyped object in the spec [unverified].
            details = body.get("details")
            per_event = _per_event(body.get("events"), count) or (
                _per_event(details.get("events"), count) if isinstance(details, dict) else None
            )
            if per_event:
                return per_event
        if response.status in (400, 413, 422):
            # The batch was refused without saying which event is at fault: bisect to find it.
            # Events re-sent this way keep their event_id, which Pinterest deduplicates on
            # (documented against the tag; assumed for API resends too [unverified]).
            return [refused(count, reason, message)]
        # 401 (code 2) / 403 (code 29) -> auth; 429 (code 8), 503 (code 4197), 5xx -> retry;
        # other 4xx -> drop (reference 5.6).
        return [classify_status(response, reason, message)]


def _per_event(statuses: object, count: int) -> list[Outcome] | None:
    """One outcome per event from `events[i]` (same order as the request), or None when the
    answer has no usable per-event list."""
    if not isinstance(statuses, list) or len(statuses) != count or not count:
        return None
    outcomes: list[Outcome] = []
    for entry in statuses:
        entry = entry if isinstance(entry, dict) else {}
        if entry.get("status") == "failed":
            message = entry.get("error_message")
            outcomes.append(
                Outcome(
                    OutcomeKind.DROP,
                    "pinterest_event_failed",
                    str(message) if message else "event failed",
                )
            )
        else:
            outcomes.append(Outcome(OutcomeKind.SUCCESS))
    return outcomes


destination = Pinterest()
