"""TikTok Events API 2.0.

Facts: ../shared/reference/vendors-ads.md section 4 (TikTok's GTM server template, help centre;
Segment and Rudder as cross-checks). POST https://business-api.tiktok.com/open_api/v1.3/event/track/
with an `Access-Token` header and {"event_source", "event_source_id", "data": [...]}.

TikTok answers HTTP 200 whatever happened; the body's `code` says whether the request was taken
(0) or why not. No per-event result is documented, so one outcome covers the whole request.

Only code 0 is success. TikTok's own Business API SDK documents `code` as shown "only if it is
an error request" (tiktok/tiktok-business-api-sdk python_sdk/docs/InlineResponse200.md) and no
TikTok source gives 20001 a meaning; Rudder counts it as success (rudder-transformer
src/v0/destinations/tiktok_ads/networkHandler.js), which would hide a refusal. So 20001 is
handled like any other unexplained code: a batch is split (TikTok deduplicates the resent
events on event + event_id), a lone event is dropped with TikTok's message in the failure log.
That is safer than success (silent loss) and than retrying (a refusal would be repeated for the
events' whole lifetime). 40002 is a request validation error, not an auth failure (Rudder's
tiktok_ads README), and is split the same way, as is HTTP 413: an over-size batch (1,000 is
[impl]) is bisected and resent, never failed whole.

Event names are not checked against a list: TikTok takes custom events besides its standard
ones (https://ads.tiktok.com/help/article/supported-standard-events). contents[].quantity is an
integer. A value needs a currency (event's or `default_currency`), else it is left out.
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
from eventrelay.destinations.fields import DefaultCountry, DefaultCurrency, EventMapping, Secret

BASE_URL = "https://business-api.tiktok.com"
MAX_BATCH = 1000  # [impl] Rudder's maxBatchSizeV2; not confirmed in TikTok's own docs

# Segment e-commerce spec -> TikTok standard events (reference 0.3 and 4.5: TikTok's GTM
# template map). Order Completed is set from the `purchase_event` setting.
DEFAULT_EVENTS = {
    "Order Completed": "Purchase",
    "Product Added": "AddToCart",
    "Checkout Started": "InitiateCheckout",
    "Products Searched": "Search",
    "Product Viewed": "ViewContent",
    "Signed Up": "CompleteRegistration",
    "Payment Info Entered": "AddPaymentInfo",
    "Product Added to Wishlist": "AddToWishlist",
    seg.PAGE: "Pageview",
}

# Body `code` values ([impl] Rudder's networkHandler; TikTok documents no list in the sources).
SUCCESS_CODES = frozenset({0})
RETRY_CODES = frozenset({40100, 40700})  # 40100 rate limited; 40700 handled like a server error
AUTH_CODES = frozenset({40001})  # authentication / permission


class TiktokSettings(VendorSettings):
    pixel_id: Annotated[
        str, Field(pattern=r"^[A-Z0-9]{8,32}$", description="Pixel code, e.g. CXXXXXXXXXX.")
    ]
    access_token: Annotated[Secret, Field(description="Events API access token.")]
    api_version: Annotated[
        str, Field(pattern=r"^v\d{1,2}\.\d{1,2}$", description="Business API version, e.g. v1.3.")
    ] = "v1.3"
    # `app` and `crm` sources need objects (app, lead) this integration does not build.
    event_source: Annotated[
        Literal["web", "offline"],
        Field(
            description="web: pixel_id is the pixel code; offline: pixel_id is the offline "
            "event set id."
        ),
    ] = "web"
    purchase_event: Annotated[
        Literal["Purchase", "CompletePayment"],
        Field(
            description="Event sent for Order Completed. CompletePayment is the legacy name "
            "(TikTok renames it to Purchase) for campaigns still optimising on it."
        ),
    ] = "Purchase"
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


def user(
    event: dict[str, Any], settings: TiktokSettings, notes: Notes | None = None
) -> dict[str, Any]:
    """The `user` object (reference 4.4). Strings, as in TikTok's own template (arrays are also
    accepted). Hashed: email, phone, external_id, first/last name and zip; city, state and
    country in clear (rules: `pii.TIKTOK`). ip, user_agent, ttclid and ttp are never hashed."""
    data: dict[str, Any] = {
        **pii.TIKTOK.apply(seg.attributes(event, settings.default_country, notes)),
        "ttclid": seg.click_id(event, "ttclid"),
        # The _ttp cookie, under either name.
        "ttp": seg.click_id(event, "ttp") or seg.click_id(event, "_ttp"),
        "ip": seg.ip(event),
        "user_agent": seg.user_agent(event),
    }
    return {k: v for k, v in data.items() if v}


def properties(
    event: dict[str, Any], name: str, settings: TiktokSettings, notes: Notes
) -> dict[str, Any]:
    items = [p for p in seg.products(event) if p.id]
    value, currency = seg.money(event, settings.default_currency, notes)
    data: dict[str, Any] = {
        "currency": currency,
        "value": value,
        "order_id": seg.order_id(event),
    }
    if items:
        data["content_type"] = "product"
        data["contents"] = [
            {
                k: v
                for k, v in {
                    "content_id": p.id,
                    "content_name": p.name,
                    "quantity": count(p.quantity),
                    "price": p.price,
                }.items()
                if v is not None
            }
            for p in items
        ]
    if name == "Search":
        # [impl] `query` is what Segment sends; the reference also names `search_string`.
        data["query"] = seg.search_query(event)
    return {k: v for k, v in data.items() if v is not None}


def page(event: dict[str, Any]) -> dict[str, str]:
    data = {"url": seg.page_url(event), "referrer": seg.referrer(event)}
    return {k: v for k, v in data.items() if v}


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
    max_batch = MAX_BATCH
    delivers = True

    def url(self, settings: TiktokSettings, ctx: BuildContext) -> str:
        return ctx.url(f"{BASE_URL}/open_api/{settings.api_version}/event/track/")

    def item(
        self, record: EventRecord, settings: TiktokSettings, ctx: BuildContext, notes: Notes
    ) -> Item | str:
        """One `data` entry, or the reason the event is skipped."""
        event = record.data
        defaults = {**DEFAULT_EVENTS, "Order Completed": settings.purchase_event}
        # TikTok takes custom event names: an unmapped track event keeps its own name.
        name = seg.map_event(event, defaults, settings.event_mapping)
        if not name:
            return "unmapped"
        data: Item = {
            "event": name,
            "event_time": seg.timestamp_seconds(event) or int(ctx.now.timestamp()),
        }
        if record.message_id:
            # Dedup key with the pixel (same event + event_id within 48 h); the messageId is
            # the same on every retry.
            data["event_id"] = record.message_id
        data["user"] = user(event, settings, notes)
        if where := page(event):
            data["page"] = where
        if props := properties(event, name, settings, notes):
            data["properties"] = props
        # Segment always sends the flag; TikTok documents it as a boolean per event.
        data["limited_data_use"] = seg.limited_data_use(event)
        return data

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        assert isinstance(settings, TiktokSettings)
        result, items = collect(
            events,
            lambda record, notes: self.item(record, settings, ctx, notes),
            ("track", "page"),
        )
        head: dict[str, Any] = {
            "event_source": settings.event_source,
            "event_source_id": settings.pixel_id,
        }
        if ctx.test_mode:
            # [unverified] how TikTok treats an unknown code; a configured one is expected.
            head["test_event_code"] = settings.test_event_code or "TEST00000"
        result.requests = json_requests(
            self.url(settings, ctx),
            {"Access-Token": settings.access_token.get_secret_value()},
            items,
            # [impl] Rudder does not batch test events: one request per event in test mode.
            1 if ctx.test_mode else MAX_BATCH,
            lambda data: {**head, "data": data},
        )
        return result

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        answer = json_body(response)
        code = answer.get("code") if isinstance(answer, dict) else None
        if response.status == 413:
            # The batch was too large for TikTok: bisect and resend.
            return [refused(len(request.event_indices), "http_413", body_text(response))]
        if not isinstance(code, int) or isinstance(code, bool):
            if 200 <= response.status < 300:
                # TikTok always answers with a code; anything else is not its answer.
                return [Outcome(OutcomeKind.RETRY, "invalid_response", body_text(response))]
            return [classify_status(response)]
        assert isinstance(answer, dict)
        message = str(answer.get("message") or "") or body_text(response)
        reason = f"tiktok_{code}"
        if code in SUCCESS_CODES and 200 <= response.status < 300:
            return [Outcome(OutcomeKind.SUCCESS)]
        if code in RETRY_CODES:
            return [
                Outcome(OutcomeKind.RETRY, reason, message, retry_after_seconds(response.headers))
            ]
        if code in AUTH_CODES:
            return [Outcome(OutcomeKind.AUTH, reason, message)]
        if not 200 <= response.status < 300:
            # Other codes on an HTTP error: the status decides ([impl] Rudder).
            return [classify_status(response, reason, message)]
        # A refusal names no event: bisect a batch so only the bad event is dropped (resent
        # events are deduplicated by TikTok on event + event_id).
        return [refused(len(request.event_indices), reason, message)]


destination = Tiktok()
