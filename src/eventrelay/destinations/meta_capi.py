"""Meta (Facebook) Conversions API.

Facts: ../shared/reference/vendors-ads.md section 2 (Graph API docs, facebook-business SDK).
POST https://graph.facebook.com/{version}/{pixel_id}/events with {"data": [...]}, up to 1,000
events; a batch is accepted or refused as a whole, so a refusal for a bad parameter (error code
100) is answered with SPLIT and the worker bisects the batch to isolate the bad event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field

from eventrelay.destinations.base import (
    BuildContext,
    BuildResult,
    Destination,
    EventRecord,
    HttpRequest,
    HttpResponse,
    Outcome,
    OutcomeKind,
    VendorSettings,
)
from eventrelay.destinations.classify import body_text, classify_status, retry_after_seconds
from eventrelay.destinations.common import pii
from eventrelay.destinations.common import segment as seg
from eventrelay.destinations.common.paths import text
from eventrelay.destinations.fields import EventMapping, Secret

BASE_URL = "https://graph.facebook.com"
MAX_AGE_SECONDS = 7 * 24 * 3600  # Meta refuses the whole request if one event is older

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


def _hashed_list(field: str, *values: str | None) -> list[str] | None:
    hashed = [h for v in values if (h := pii.meta_hash(field, v))]
    return list(dict.fromkeys(hashed)) or None


def user_data(event: dict[str, Any], now_ms: int) -> dict[str, Any]:
    country = seg.address_field(event, "country")
    data: dict[str, Any] = {
        "em": _hashed_list("em", seg.user_field(event, "email")),
        "ph": _hashed_list("ph", seg.user_field(event, "phone")),
        "fn": _hashed_list("fn", seg.user_field(event, "first_name", "firstName")),
        "ln": _hashed_list("ln", seg.user_field(event, "last_name", "lastName")),
        "ge": _hashed_list("ge", pii.gender(seg.user_field(event, "gender") or "")),
        "db": _hashed_list(
            "db", pii.birthdate(seg.user_field(event, "birthday", "birthdate") or "")
        ),
        "ct": _hashed_list("ct", seg.address_field(event, "city")),
        "st": _hashed_list("st", seg.address_field(event, "state")),
        "zp": _hashed_list("zp", seg.address_field(event, "postal_code")),
        # Meta wants ISO codes; a country name is turned into one first.
        "country": _hashed_list("country", pii.country_code(country) if country else None),
        "external_id": _hashed_list("external_id", seg.user_id(event), seg.anonymous_id(event)),
        "client_ip_address": seg.ip(event),
        "client_user_agent": seg.user_agent(event),
        "fbc": _fbc(event, now_ms),
        "fbp": text(event, "properties.fbp", "context.fbp", "context.traits.fbp", "traits.fbp"),
    }
    return {k: v for k, v in data.items() if v}


def _fbc(event: dict[str, Any], now_ms: int) -> str | None:
    """The _fbc cookie value, else built from the fbclid of the landing URL:
    fb.1.<creation time ms>.<fbclid> (the fbclid kept exactly as received)."""
    cookie = text(event, "properties.fbc", "context.fbc", "context.traits.fbc", "traits.fbc")
    if cookie:
        return cookie
    fbclid = seg.click_id(event, "fbclid")
    if not fbclid:
        return None
    return f"fb.1.{seg.timestamp_ms(event) or now_ms}.{fbclid}"


def custom_data(event: dict[str, Any], name: str) -> dict[str, Any]:
    items = seg.products(event)
    data: dict[str, Any] = {
        "currency": seg.currency(event),
        "value": seg.value(event),
        "order_id": seg.order_id(event),
    }
    if items:
        data["content_type"] = "product"
        data["content_ids"] = [p.id for p in items if p.id]
        data["contents"] = [
            {
                k: v
                for k, v in {"id": p.id, "quantity": p.quantity, "item_price": p.price}.items()
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
    if data.get("value") is not None and not data.get("currency"):
        data["currency"] = "USD"  # Meta requires a currency with a value
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

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        assert isinstance(settings, MetaCapiSettings)
        result = BuildResult()
        now_ms = int(ctx.now.timestamp() * 1000)
        data: list[dict[str, Any]] = []
        indices: list[int] = []
        for index, record in enumerate(events):
            event = record.data
            if event.get("type") not in ("track", "page"):
                result.skipped[index] = "unsupported_type"
                continue
            name = seg.map_event(event, DEFAULT_EVENTS, settings.event_mapping)
            if not name:
                result.skipped[index] = "unmapped"
                continue
            event_time = seg.timestamp_seconds(event) or now_ms // 1000
            if now_ms // 1000 - event_time > MAX_AGE_SECONDS:
                result.skipped[index] = "too_old"  # one old event would fail the whole batch
                continue
            source = text(event, "properties.action_source")
            action_source = source if source in ACTION_SOURCES else settings.action_source
            users = user_data(event, now_ms)
            if action_source == "website" and "client_user_agent" not in users:
                result.skipped[index] = "missing_user_agent"  # required for website events
                continue
            item: dict[str, Any] = {
                "event_name": name,
                "event_time": event_time,
                "event_id": record.message_id,
                "action_source": action_source,
                "user_data": users,
            }
            url = seg.page_url(event)
            if url:
                item["event_source_url"] = url
            custom = custom_data(event, name)
            if custom:
                item["custom_data"] = custom
            if seg.limited_data_use(event):
                item["data_processing_options"] = ["LDU"]
                item["data_processing_options_country"] = 0
                item["data_processing_options_state"] = 0
            data.append(item)
            indices.append(index)
        if data:
            body: dict[str, Any] = {"data": data}
            if ctx.test_mode:
                body["test_event_code"] = settings.test_event_code or "TEST00000"
            result.requests.append(
                HttpRequest(
                    "POST",
                    self.url(settings, ctx),
                    {
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {settings.access_token.get_secret_value()}",
                    },
                    orjson.dumps(body),
                    tuple(indices),
                )
            )
        return result

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        if 200 <= response.status < 300:
            return [Outcome(OutcomeKind.SUCCESS)]
        try:
            error = orjson.loads(response.body).get("error") or {}
        except (orjson.JSONDecodeError, AttributeError):
            error = {}
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
        if code == 100 and len(request.event_indices) > 1:
            # One bad event refuses the whole batch: split it to find that event.
            return [Outcome(OutcomeKind.SPLIT, reason, message)]
        return [Outcome(OutcomeKind.DROP, reason, message)]


destination = MetaCapi()
