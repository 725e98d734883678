"""The Trade Desk Real-Time Conversions.

Facts: ../shared/reference/vendors-ads.md section 8 (TTD's own server-side GTM tag; the API
documentation itself is partner-gated). POST https://insight.adsrvr.org/track/realtimeconversion
with {"data": [...]}. Identity is raw ids (TDID, UID2, device ids), never hashed PII; the call is
scoped by the tracker and advertiser ids in the body. Outcomes rest on the HTTP status alone.

Identity: TTD's current tag marks `adid_type` and `adid` NON_EMPTY and offers these id types,
sent as their wire values: TDID, UID2, EUID, IDL (RampID), "Device Advertising ID" (shown as
DAID), IDFA, AAID, NAID (thetradedesk/conversion-events-server-side-googletagmanager
template.tpl @9c8cdd5, 2026-03). Rudder writes DAID as "DAID" (rudder-transformer
the_trade_desk_real_time_conversions config.js); we send the vendor's own template value and
accept either spelling as input. An event with none of these ids is not sent (skipped as
`no_identifier`, counted as filtered): it could never be attributed. TTD documents no way to
send a hashed email in this API (UID2 tokens come from the UID2 operator), so none is derived.

Limited data use: the `data_processing_option` block is sent only with its `region`
("us-<state>", Rudder's shape: one LDU policy, US regions only). An event that asks for
limited data use without a known US state is not sent at all (`ldu_region_unknown`): sending it
without the block would ignore the user's opt-out, and a block without a region is what Rudder
itself refuses to send; dropping the conversion is the safer choice.

Values need a currency (the event's or `default_currency`), else they are left out; td1-td10
and other free text never carry an email address or phone number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

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
    VendorSettings,
    collect,
    json_requests,
)
from eventrelay.destinations.classify import body_text, classify_status, refused
from eventrelay.destinations.common import pii
from eventrelay.destinations.common import segment as seg
from eventrelay.destinations.common.normalize import country_code
from eventrelay.destinations.common.numbers import count, decimal_string
from eventrelay.destinations.common.paths import get, text
from eventrelay.destinations.fields import DefaultCurrency, EventMapping, Secret

URL = "https://insight.adsrvr.org/track/realtimeconversion"

TtdId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]

# Event names are defined per advertiser's tracker with TTD; these are the e-commerce names
# Rudder uses [impl] (reference 8.2). Products Searched and Signed Up have no TTD default and
# go out under their own name (tracker-defined custom events) unless mapped.
DEFAULT_EVENTS = {
    "Order Completed": "purchase",
    "Product Added": "addtocart",
    "Checkout Started": "startcheckout",
    "Product Viewed": "viewitem",
    "Cart Viewed": "viewcart",
    "Product Added to Wishlist": "wishlistitem",
}
PURCHASE = "purchase"
DAID = "Device Advertising ID"  # the tag's wire value for DAID
ADID_TYPES = ("TDID", "UID2", "EUID", "IDL", DAID, "IDFA", "AAID", "NAID")
# Input spellings of an explicit adid_type -> the value sent.
_ADID_ALIASES = {t.upper(): t for t in ADID_TYPES} | {"DAID": DAID, "RAMPID": "IDL"}
NO_IDENTIFIER = "no_identifier"
LDU_REGION_UNKNOWN = "ldu_region_unknown"
# Where an event carries each kind of id (properties, traits, context.traits), by adid_type.
NAMED_IDS = (
    ("TDID", ("tdid",)),
    ("UID2", ("uid2",)),
    ("EUID", ("euid",)),
    ("IDL", ("ramp_id", "rampId", "idl")),
)
SUPPORTED_TYPES = ("track", "page", "screen")
CUSTOM_DIMENSIONS = tuple(f"td{i}" for i in range(1, 11))


class TheTradeDeskSettings(VendorSettings):
    advertiser_id: TtdId
    tracking_tag_id: TtdId
    # Kept (it is part of the admin API contract) but not sent: the real-time endpoint takes no
    # auth header in TTD's own tag or Rudder (reference 8.1); TTD-Auth belongs to the Data API /
    # offline conversions (reference 8.7), a different product.
    auth_token: Annotated[Secret, Field(description="TTD-Auth token.")]
    universal_pixel_id: Annotated[
        TtdId | None,
        Field(
            description="Universal pixel id: page views are sent in URL-mapping mode "
            "(adv + upixel_id + referrer_url). Without it they are skipped unless mapped."
        ),
    ] = None
    event_mapping: EventMapping = {}
    custom_events: Annotated[
        bool,
        Field(
            description="Send track events with no mapping under their own name "
            "(tracker-defined events); otherwise they are skipped as unmapped."
        ),
    ] = True
    default_currency: DefaultCurrency = None


def adid(event: dict[str, Any]) -> tuple[str, str] | None:
    """(id, adid_type), sent raw. In order: an explicit `adid` + `adid_type` (properties, traits
    or context.traits); a TDID / UID2 / EUID / RampID under its own name; the device's
    advertising id (IDFA on iOS, AAID on Android, DAID elsewhere) unless ad tracking is
    disabled. Never a value that looks like an email address or phone number."""
    explicit = seg.clean(event, *_user_paths("adid"))
    kind = _ADID_ALIASES.get((seg.user_field(event, "adid_type") or "").upper())
    if explicit and kind:
        return explicit, kind
    for type_, names in NAMED_IDS:
        found = seg.clean(event, *_user_paths(*names))
        if found:
            return found, type_
    device_id = seg.clean(event, "context.device.advertisingId")
    if device_id and get(event, "context.device.adTrackingEnabled") is not False:
        os_name = (text(event, "context.device.type", "context.os.name") or "").lower()
        if os_name in ("ios", "ipados"):
            return device_id, "IDFA"
        if os_name == "android":
            return device_id, "AAID"
        return device_id, DAID
    return None


def _user_paths(*names: str) -> tuple[str, ...]:
    return tuple(f"{p}.{n}" for n in names for p in ("properties", "traits", "context.traits"))


def identity(event: dict[str, Any], found: tuple[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "adid": found[0],
        "adid_type": found[1],
        "client_ip": seg.ip(event),
        # The page the conversion happened on (TTD's field name for it).
        "referrer_url": seg.page_url(event),
    }
    return {k: v for k, v in data.items() if v}


def privacy(event: dict[str, Any]) -> dict[str, Any] | None:
    """privacy_settings and data_processing_option, or None when the event asks for limited
    data use without a region to send it with (the event is then not sent)."""
    data: dict[str, Any] = {}
    # The IAB TCF v2 string is read from context.consent.tcfString (Segment's consent object has
    # no standard field for it); context.consent.gdprApplies=false marks GDPR as not applicable.
    tcf = text(event, "context.consent.tcfString")
    if tcf:
        applies = get(event, "context.consent.gdprApplies") is not False
        data["privacy_settings"] = [
            {"privacy_type": "GDPR", "is_applicable": 1 if applies else 0, "consent_string": tcf}
        ]
    if seg.limited_data_use(event):
        # Shape from Rudder (one policy, LDU only, with its region) [impl].
        region = _us_region(event)
        if not region:
            return None
        data["data_processing_option"] = {"policies": ["LDU"], "region": region}
    return data


def _us_region(event: dict[str, Any]) -> str | None:
    """ "us-<state>" from the user's 2-letter state when the country is the US or unknown.
    Rudder only accepts regions starting with "us"; the exact code format is [unverified]."""
    country = seg.address_field(event, "country")
    if country and country_code(country) != "us":
        return None
    state = pii.THE_TRADE_DESK.apply(seg.attributes(event)).get("region_state")
    return f"us-{state}" if state else None


def commerce(
    event: dict[str, Any], name: str, settings: TheTradeDeskSettings, notes: Notes
) -> dict[str, Any]:
    value, currency = seg.money(event, settings.default_currency, notes)
    data: dict[str, Any] = {
        "value": decimal_string(value) if value is not None else None,  # a string, per TTD's tag
        "currency": currency,
    }
    if name.lower() == PURCHASE or event.get("event") == "Order Completed":
        # The dedup key. Only on purchases: a Checkout Started with the same order id must not
        # be deduplicated against the purchase that follows it.
        data["order_id"] = seg.order_id(event)
    items = [
        {
            k: v
            for k, v in {
                "item_code": p.id,
                "name": p.name,
                "qty": str(count(p.quantity)) if p.quantity is not None else None,
                "price": decimal_string(p.price) if p.price is not None else None,
                "cat": p.category,
            }.items()
            if v is not None
        }
        for p in seg.products(event)
        if p.id or p.name
    ]
    if items:
        data["items"] = items
    for name_ in CUSTOM_DIMENSIONS:
        data[name_] = seg.clean(event, f"properties.{name_}")
    return {k: v for k, v in data.items() if v is not None}


class TheTradeDesk(Destination):
    type = "the_trade_desk"
    title = "The Trade Desk Real-Time Conversions"
    vendor = "The Trade Desk"
    api = "Real-Time Conversions"
    category = "advertising"
    docs_url = "https://partner.thetradedesk.com/v3/portal/data/doc/DataConversionEventsApi"
    Settings = TheTradeDeskSettings
    default_consent = ("advertising",)
    # No documented maximum [unverified]: batch conservatively until TTD confirms one.
    max_batch = 100
    delivers = True

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        assert isinstance(settings, TheTradeDeskSettings)
        if ctx.test_mode:
            # TTD has no test endpoint or test flag (reference 8.6): any call records a real
            # conversion in the advertiser's reports. The admin test call (test_build builds in
            # test mode) therefore sends nothing and says why.
            return BuildResult(skipped=dict.fromkeys(range(len(events)), "no_test_mode"))
        result, items = collect(
            events, lambda record, notes: self.item(record, settings, notes), SUPPORTED_TYPES
        )
        result.requests = json_requests(ctx.url(URL), {}, items, self.max_batch)
        return result

    def item(self, record: EventRecord, settings: TheTradeDeskSettings, notes: Notes) -> Item | str:
        """One `data` entry, or the reason the event is skipped."""
        event = record.data
        name = seg.map_event(event, DEFAULT_EVENTS, settings.event_mapping, settings.custom_events)
        if name:
            # tracker_id + adv as Rudder sends them [impl]; TTD's own tag pairs tracker_id
            # with merchant_id instead (reference 8.1).
            item: Item = {
                "tracker_id": settings.tracking_tag_id,
                "adv": settings.advertiser_id,
                "event_name": name,
            }
        elif event.get("type") == "page" and settings.universal_pixel_id:
            if not seg.page_url(event):
                return "missing_page_url"  # URL mapping needs the URL
            # URL-mapping mode: TTD maps the page URL to a conversion itself.
            item = {"adv": settings.advertiser_id, "upixel_id": settings.universal_pixel_id}
        else:
            return "unmapped"
        found = adid(event)
        if not found:
            notes.add(
                "adid",
                NO_IDENTIFIER,
                "not sent: no TDID, UID2, EUID, RampID or device advertising id on the event "
                "(TTD requires adid and adid_type)",
            )
            return NO_IDENTIFIER
        options = privacy(event)
        if options is None:
            notes.add(
                "data_processing_option",
                LDU_REGION_UNKNOWN,
                "not sent: the event asks for limited data use, but names no US state to send "
                "the restriction with",
            )
            return LDU_REGION_UNKNOWN
        if name:
            item.update(commerce(event, name, settings, notes))
        item.update(identity(event, found))
        item.update(options)
        return item

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        # No documented response semantics (reference 8.4): 2xx success, 401/403 auth,
        # 429/5xx retry, other 4xx drop (classify_status). A batch refused with 400/413 may be
        # one bad (or too large) event among many: bisect it rather than drop them all. This is
        # our choice, not documented by TTD [unverified]; a lone event is then dropped.
        if response.status in (400, 413):
            reason = f"http_{response.status}"
            return [refused(len(request.event_indices), reason, body_text(response))]
        return [classify_status(response)]


destination = TheTradeDesk()
