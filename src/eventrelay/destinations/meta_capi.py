"""Meta (Facebook) Conversions API.

Facts: ../shared/reference/vendors-ads.md section 2 (Graph API docs, facebook-business SDK).
POST https://graph.facebook.com/{version}/{pixel_id}/events with {"data": [...]}, up to 1,000
events; a batch is accepted or refused as a whole, so a refusal for a bad parameter (error code
100) is answered with SPLIT and the worker bisects the batch to isolate the bad event.

Event names are not checked against a list: Meta takes custom event names besides its standard
events (https://developers.facebook.com/docs/meta-pixel/reference). A value needs a currency:
the event's, else the integration's default_currency, else the value is left out (never a
guessed USD). contents[].quantity and num_items are integers, as Meta documents them
(https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/custom-data).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field

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
from eventrelay.destinations.classify import (
    body_text,
    classify_status,
    json_body,
    refused,
    retry_after_seconds,
)
from eventrelay.destinations.common import pii
from eventrelay.destinations.common import segment as seg
from eventrelay.destinations.common.numbers import count
from eventrelay.destinations.common.paths import text
from eventrelay.destinations.fields import DefaultCountry, DefaultCurrency, EventMapping, Secret

BASE_URL = "https://graph.facebook.com"
# Meta refuses the whole request if one event is older: 7 days, 62 for physical_store events
# (reference 2.2).
MAX_AGE_SECONDS = 7 * 24 * 3600
MAX_AGE_SECONDS_BY_SOURCE = {"physical_store": 62 * 24 * 3600}

# Segment e-commerce spec -> Meta standard events (Segment presets; Signed Up is the natural
# CompleteRegistration, which Segment has no preset for).
DEFAULT_EVENTS = {
    "Order Completed": "Purchase",
    "Product Added": "AddToCart",
    "Checkout Started": "InitiateCheckout",
    "Products Searched": "Search",
    "Product Viewed": "ViewContent",
    "Signed Up": "CompleteRegistration",
    "Payment Info Entered": "AddPaymentInfo",
    "Product Added to Wishlist": "AddToWishlist",
    seg.PAGE: "PageView",
}
ACTION_SOURCES = (
    "website",
    "app",
    "email",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
)
# Graph API error codes (error-handling guide): temporary or throttling -> retry.
RETRY_CODES = frozenset({1, 2, 4, 17, 32, 341, 613})
AUTH_CODES = frozenset({190, 10}) | frozenset(range(200, 300))


class MetaCapiSettings(VendorSettings):
    pixel_id: Annotated[
        str, Field(pattern=r"^\d{5,32}$", description="Pixel (dataset) id, digits.")
    ]
    access_token: Annotated[Secret, Field(description="System-user access token.")]
    api_version: Annotated[
        str, Field(pattern=r"^v\d{2,3}\.\d$", description="Graph API version, e.g. v26.0.")
    ] = "v26.0"
    action_source: Literal[
        "website",
        "app",
        "email",
        "phone_call",
        "chat",
        "physical_store",
        "system_generated",
        "business_messaging",
        "other",
    ] = "website"
    event_mapping: EventMapping = {}
    test_event_code: Annotated[
        str | None,
        Field(
            max_length=64,
            description="Events Manager test code, used by the admin test call (never in production).",
        ),
    ] = None
    default_country: DefaultCountry = None
    default_currency: DefaultCurrency = None


def user_data(
    event: dict[str, Any], now_ms: int, settings: MetaCapiSettings, notes: Notes | None = None
) -> dict[str, Any]:
    """Hashed by `pii.META` (arrays); IP, user agent, fbc and fbp in clear."""
    data: dict[str, Any] = {
        **pii.META.apply(seg.attributes(event, settings.default_country, notes), arrays=True),
        "client_ip_address": seg.ip(event),
        "client_user_agent": seg.user_agent(event),
        "fbc": _fbc(event, now_ms),
        "fbp": seg.clean(
            event, "properties.fbp", "context.fbp", "context.traits.fbp", "traits.fbp"
        ),
    }
    return {k: v for k, v in data.items() if v}


def _fbc(event: dict[str, Any], now_ms: int) -> str | None:
    """The _fbc cookie value, else built from the fbclid of the landing URL:
    fb.1.<creation time ms>.<fbclid> (the fbclid kept exactly as received)."""
    cookie = seg.clean(event, "properties.fbc", "context.fbc", "context.traits.fbc", "traits.fbc")
    if cookie:
        return cookie
    fbclid = seg.click_id(event, "fbclid")
    if not fbclid:
        return None
    return f"fb.1.{seg.timestamp_ms(event) or now_ms}.{fbclid}"


def custom_data(
    event: dict[str, Any], name: str, settings: MetaCapiSettings, notes: Notes
) -> dict[str, Any]:
    items = seg.products(event)
    value, currency = seg.money(event, settings.default_currency, notes)
    data: dict[str, Any] = {
        "currency": currency,
        "value": value,
        "order_id": seg.order_id(event),
    }
    if items:
        data["content_type"] = "product"
        data["content_ids"] = [p.id for p in items if p.id]
        data["contents"] = [
            {
                k: v
                for k, v in {
                    "id": p.id,
                    "quantity": count(p.quantity),
                    "item_price": p.price,
                }.items()
                if v is not None
            }
            for p in items
            if p.id
        ]
        data["num_items"] = seg.quantity(event)
        if len(items) == 1 and items[0].name:
            data["content_name"] = items[0].name
        if len(items) == 1 and items[0].category:
            data["content_category"] = items[0].category
    if name == "Search":
        data["search_string"] = seg.search_query(event)
    return {k: v for k, v in data.items() if v is not None and v != [] and v != ""}


class MetaCapi(Destination):
    type = "meta_capi"
    title = "Meta Conversions API"
    vendor = "Meta / Facebook"
    api = "Conversions API"
    category = "advertising"
    docs_url = "https://developers.facebook.com/docs/marketing-api/conversions-api"
    api_version = "v26.0"
    Settings = MetaCapiSettings
    default_consent = ("advertising",)
    max_batch = 1000
    delivers = True

    def url(self, settings: MetaCapiSettings, ctx: BuildContext) -> str:
        return ctx.url(f"{BASE_URL}/{settings.api_version}/{settings.pixel_id}/events")

    def item(
        self, record: EventRecord, settings: MetaCapiSettings, now_ms: int, notes: Notes
    ) -> Item | str:
        """One `data` entry, or the reason the event is skipped."""
        event = record.data
        name = seg.map_event(event, DEFAULT_EVENTS, settings.event_mapping)
        if not name:
            return "unmapped"
        source = text(event, "properties.action_source")
        action_source = source if source in ACTION_SOURCES else settings.action_source
        event_time = seg.timestamp_seconds(event) or now_ms // 1000
        max_age = MAX_AGE_SECONDS_BY_SOURCE.get(action_source, MAX_AGE_SECONDS)
        if now_ms // 1000 - event_time > max_age:
            return "too_old"  # one old event would fail the whole batch
        users = user_data(event, now_ms, settings, notes)
        if action_source == "website" and "client_user_agent" not in users:
            return "missing_user_agent"  # required for website events
        item: Item = {
            "event_name": name,
            "event_time": event_time,
            "event_id": record.message_id,
            "action_source": action_source,
            "user_data": users,
        }
        url = seg.page_url(event)
        if url:
            item["event_source_url"] = url
        custom = custom_data(event, name, settings, notes)
        if custom:
            item["custom_data"] = custom
        if seg.limited_data_use(event):
            item["data_processing_options"] = ["LDU"]
            item["data_processing_options_country"] = 0
            item["data_processing_options_state"] = 0
        return item

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        assert isinstance(settings, MetaCapiSettings)
        now_ms = int(ctx.now.timestamp() * 1000)
        result, items = collect(
            events,
            lambda record, notes: self.item(record, settings, now_ms, notes),
            ("track", "page"),
        )
        test = {"test_event_code": settings.test_event_code or "TEST00000"} if ctx.test_mode else {}
        result.requests = json_requests(
            self.url(settings, ctx),
            bearer(settings.access_token.get_secret_value()),
            items,
            self.max_batch,
            lambda data: {"data": data, **test},
        )
        return result

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        if 200 <= response.status < 300:
            return [Outcome(OutcomeKind.SUCCESS)]
        answer = json_body(response)
        error = (answer.get("error") or {}) if isinstance(answer, dict) else {}
        if not isinstance(error, dict) or "code" not in error:
            return [classify_status(response)]
        code = error.get("code")
        message = " ".join(
            str(part) for part in (error.get("message"), error.get("error_user_msg")) if part
        ) or body_text(response)
        reason = f"meta_{code}"
        if error.get("is_transient") or code in RETRY_CODES or response.status >= 500:
            return [
                Outcome(OutcomeKind.RETRY, reason, message, retry_after_seconds(response.headers))
            ]
        if code in AUTH_CODES or response.status in (401, 403):
            return [Outcome(OutcomeKind.AUTH, reason, message)]
        if code == 100:
            # An invalid parameter: one bad event refuses the whole batch, split it to find it.
            return [refused(len(request.event_indices), reason, message)]
        return [Outcome(OutcomeKind.DROP, reason, message)]


destination = MetaCapi()
