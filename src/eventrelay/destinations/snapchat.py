"""Snap Conversions API v3.

Facts: ../shared/reference/vendors-ads.md section 6 (Snap's Conversions API docs and the v3
SDK's OpenAPI schema; Segment and Rudder as cross-checks).
POST https://tr.snapchat.com/v3/{pixel_id}/events?access_token=... with {"data": [...]}; the
admin test call posts the same body to .../events/validate, which Snap checks without recording
conversions.

Snap takes only its enumerated event names (CUSTOM_EVENT_1..5 for custom events), so an event
with no mapping is skipped, never sent under its own name, and a mapping to another name is
refused when the integration is saved.

Limited data use: Snap's v3 schema (Snapchat/business-sdk-v3-java api/openapi.yaml) types
`data_processing_options` as a free list of strings; Snap's own v3 SDK README and examples send
["LDU"], while Snap's Parameters page
(https://developers.snap.com/api/marketing-api/Conversions-API/Parameters) titles the block
"LMU". With Snap's sources disagreeing, both values are sent: the restriction then holds
whichever spelling Snap honours, and an extra value in a list of flags can only restrict, never
lift, processing [unverified: check with /events/validate]. The country/state companions are
Meta's and are not documented for Snap, so they are not sent.

Hashing follows Snap's Parameters page: names "lower case letters only", punctuation removed;
a US ZIP+4 is hashed as its 5-digit ZIP and a US state as its 2-letter code (as Snap's own
Segment integration does), see `pii.SNAPCHAT`. num_items is an integer (v3 schema). A value
needs a currency (Snap: "required for Purchase events"): the event's or `default_currency`,
else it is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal
from urllib.parse import quote

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
    collect,
    json_requests,
)
from eventrelay.destinations.classify import body_text, classify_status, json_body, refused
from eventrelay.destinations.common import pii
from eventrelay.destinations.common import segment as seg
from eventrelay.destinations.fields import (
    MAPPING,
    DefaultCountry,
    DefaultCurrency,
    MappingKey,
    Secret,
    name_field,
    one_of,
)

BASE_URL = "https://tr.snapchat.com"
MAX_BATCH = 2000  # [impl] Rudder's MAX_BATCH_SIZE; Snap documents no limit in the sources

# Snap's v3 event names (reference 6.5).
EVENT_NAMES = frozenset(
    {
        "PAGE_VIEW",
        "VIEW_CONTENT",
        "ADD_CART",
        "ADD_TO_WISHLIST",
        "SIGN_UP",
        "SEARCH",
        "PURCHASE",
        "ADD_BILLING",
        "START_CHECKOUT",
        "LIST_VIEW",
        "SUBSCRIBE",
        "START_TRIAL",
        "LOGIN",
        "SHARE",
        "SAVE",
        "RATE",
        "INVITE",
        "RESERVE",
        "APP_INSTALL",
        "APP_OPEN",
        "COMPLETE_TUTORIAL",
        "LEVEL_COMPLETE",
        "ACHIEVEMENT_UNLOCKED",
        "SPENT_CREDITS",
        "AD_CLICK",
        "AD_VIEW",
    }
    | {f"CUSTOM_EVENT_{n}" for n in range(1, 6)}
)

# Segment e-commerce spec -> Snap events (Segment presets, reference 6.5; wishlist added as the
# obvious match).
DEFAULT_EVENTS = {
    "Order Completed": "PURCHASE",
    "Product Added": "ADD_CART",
    "Checkout Started": "START_CHECKOUT",
    "Products Searched": "SEARCH",
    "Product Viewed": "VIEW_CONTENT",
    "Signed Up": "SIGN_UP",
    "Payment Info Entered": "ADD_BILLING",
    "Product List Viewed": "LIST_VIEW",
    "Signed In": "LOGIN",
    "Product Added to Wishlist": "ADD_TO_WISHLIST",
    seg.PAGE: "PAGE_VIEW",
}

FAILED = frozenset({"INVALID", "FAILURE"})
LIMITED_DATA_USE = ["LDU", "LMU"]  # see the module comment

SnapEventName = Annotated[str, name_field(EVENT_NAMES), AfterValidator(one_of(EVENT_NAMES))]


class SnapchatSettings(VendorSettings):
    pixel_id: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$", description="Snap Pixel id (or Snap App id).")
    ]
    access_token: Annotated[Secret, Field(description="Conversions API token.")]
    api_version: Annotated[
        str, Field(pattern=r"^v\d{1,2}$", description="Conversions API version, e.g. v3.")
    ] = "v3"
    # MOBILE_APP is left out: app events need app_data (extinfo) this integration does not build.
    action_source: Annotated[
        Literal["WEB", "OFFLINE"], Field(description="Where the conversions happen.")
    ] = "WEB"
    event_mapping: Annotated[dict[MappingKey, SnapEventName], MAPPING] = {}
    default_country: DefaultCountry = None
    default_currency: DefaultCurrency = None


def user_data(
    event: dict[str, Any], settings: SnapchatSettings, notes: Notes | None = None
) -> dict[str, Any]:
    """`user_data` (reference 6.4): em, ph, fn, ln, ct, st, zp, country and external_id hashed
    by `pii.SNAPCHAT`, as arrays (the v3 schema). IP, user agent, click id and cookie go
    unhashed."""
    data: dict[str, Any] = {
        **pii.SNAPCHAT.apply(seg.attributes(event, settings.default_country, notes), arrays=True),
        "client_ip_address": seg.ip(event),
        "client_user_agent": seg.user_agent(event),
        # The ScCid landing-page parameter and the _scid cookie, kept exactly as received.
        "sc_click_id": seg.click_id(event, "ScCid") or seg.click_id(event, "sc_click_id"),
        "sc_cookie1": seg.click_id(event, "_scid") or seg.click_id(event, "sc_cookie1"),
    }
    return {k: v for k, v in data.items() if v}


def custom_data(
    event: dict[str, Any], name: str, settings: SnapchatSettings, notes: Notes
) -> dict[str, Any]:
    items = seg.products(event)
    value, currency = seg.money(event, settings.default_currency, notes)
    data: dict[str, Any] = {
        "currency": currency,
        "value": value,  # a number in the v3 schema
        "order_id": seg.order_id(event),
    }
    if items:
        data["content_ids"] = [p.id for p in items if p.id]
        data["num_items"] = seg.quantity(event)
    if name == "SEARCH":
        data["search_string"] = seg.search_query(event)
    return {k: v for k, v in data.items() if v is not None and v != []}


def _message(answer: dict[str, Any], response: HttpResponse) -> str:
    errors = answer.get("errors")
    parts: list[str] = []
    if isinstance(errors, dict):
        parts = [str(m) for m in errors.get("error_msgs") or [] if m]
        codes = [str(c) for c in errors.get("codes") or [] if c]
        if codes:
            parts.append(f"({', '.join(codes)})")
    if not parts and answer.get("reason"):
        parts = [str(answer["reason"])]
    return " ".join(parts) or body_text(response)


class Snapchat(Destination):
    type = "snapchat"
    title = "Snapchat Conversions API"
    vendor = "Snapchat"
    api = "Conversions API"
    category = "advertising"
    docs_url = "https://developers.snap.com/api/marketing-api/Conversions-API"
    api_version = "v3"
    Settings = SnapchatSettings
    default_consent = ("advertising",)
    max_batch = MAX_BATCH
    delivers = True

    def url(self, settings: SnapchatSettings, ctx: BuildContext) -> str:
        # The token goes in the query string (reference 6.1). Snap tokens are JWT-like, so
        # quoting leaves them as they are and the failure log can still redact them.
        path = "events/validate" if ctx.test_mode else "events"
        token = quote(settings.access_token.get_secret_value(), safe="")
        return ctx.url(
            f"{BASE_URL}/{settings.api_version}/{settings.pixel_id}/{path}?access_token={token}"
        )

    def item(
        self, record: EventRecord, settings: SnapchatSettings, ctx: BuildContext, notes: Notes
    ) -> Item | str:
        """One `data` entry, or the reason the event is skipped."""
        event = record.data
        name = seg.map_event(event, DEFAULT_EVENTS, settings.event_mapping, custom_events=False)
        if not name:
            return "unmapped"
        users = user_data(event, settings, notes)
        # Snap requires em, ph, or IP + user agent (madid is app-only) ...
        if not (
            "em" in users
            or "ph" in users
            or ("client_ip_address" in users and "client_user_agent" in users)
        ):
            return "missing_user_data"
        url = seg.page_url(event)
        # ... and the page URL of web events ([unverified] whether OFFLINE events need one).
        if settings.action_source == "WEB" and not url:
            return "missing_event_source_url"
        data: Item = {
            "event_name": name,
            "event_time": seg.timestamp_seconds(event) or int(ctx.now.timestamp()),
            "action_source": settings.action_source,
        }
        if record.message_id:
            # Dedup key with the Snap Pixel; the messageId is the same on every retry.
            data["event_id"] = record.message_id
        if url:
            data["event_source_url"] = url
        data["user_data"] = users
        if custom := custom_data(event, name, settings, notes):
            data["custom_data"] = custom
        if seg.limited_data_use(event):
            data["data_processing_options"] = list(LIMITED_DATA_USE)
        return data

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        assert isinstance(settings, SnapchatSettings)
        result, items = collect(
            events,
            lambda record, notes: self.item(record, settings, ctx, notes),
            ("track", "page"),
        )
        result.requests = json_requests(self.url(settings, ctx), {}, items, MAX_BATCH)
        return result

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        """2xx and not INVALID: success; 401/403: token refused; 429/5xx: retry; otherwise the
        refused event (the response's `event` index, or the validate endpoint's event_logs)
        is dropped. A refusal naming no event bisects the batch."""
        status = response.status
        answer = json_body(response)
        if not isinstance(answer, dict):
            answer = {}
        if status in (401, 403) or status in (408, 429) or status >= 500 or 300 <= status < 400:
            return [classify_status(response, message=_message(answer, response))]
        count = len(request.event_indices)
        ok = Outcome(OutcomeKind.SUCCESS)
        logs = answer.get("event_logs")
        if isinstance(logs, list) and logs:
            # The validate endpoint reports each event.
            outcomes = [ok] * count
            for log in logs:
                if not isinstance(log, dict) or log.get("status") not in FAILED:
                    continue
                index = log.get("event")
                if isinstance(index, int) and 0 <= index < count:
                    outcomes[index] = Outcome(
                        OutcomeKind.DROP, "snap_invalid", _message(log, response)
                    )
            if any(o.kind is not OutcomeKind.SUCCESS for o in outcomes):
                return outcomes
        failed = answer.get("status") in FAILED
        if 200 <= status < 300 and not failed:
            return [ok]
        reason = "snap_invalid" if failed else f"http_{status}"
        message = _message(answer, response)
        index = answer.get("event")
        # [unverified] the index is 0-based, into this request's `data`.
        if count > 1 and type(index) is int and 0 <= index < count:
            # [unverified] whether Snap kept the other events: resend them (Snap deduplicates
            # on event_id if it did).
            bad = Outcome(OutcomeKind.DROP, reason, message)
            others = Outcome(OutcomeKind.RETRY, "snap_batch_refused", message)
            return [bad if i == index else others for i in range(count)]
        return [refused(count, reason, message)]


destination = Snapchat()
