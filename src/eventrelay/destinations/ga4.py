"""Google Analytics 4, Measurement Protocol.

Facts: ../shared/reference/vendors-ads.md section 1. POST /mp/collect?measurement_id=&api_secret=
with {"client_id", "user_id", "consent", "user_data", "events": [...]}. Client, user, consent
and user data are request-level, so one request carries the events of one client/user only:
a batch is grouped per (client, user, consent, user data), then cut at 25 events and 130 kB.
The Measurement Protocol answers 2xx to anything it receives and never reports payload errors,
so 2xx is success; only the /debug/mp/collect validation endpoint (admin test call) says what
is wrong with a payload.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from pydantic import Field, field_validator

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
from eventrelay.destinations.classify import classify_status
from eventrelay.destinations.common import pii
from eventrelay.destinations.common import segment as seg
from eventrelay.destinations.common.numbers import whole
from eventrelay.destinations.common.paths import get, text
from eventrelay.destinations.fields import EventMapping, Secret

HOSTS = {"global": "https://www.google-analytics.com", "eu": "https://region1.google-analytics.com"}
MAX_EVENTS = 25
MAX_BODY = 130_000  # bytes; the reference says "POST body < 130 kB"
MAX_AGE = timedelta(hours=72)  # backdating limit (3 calendar days in the property's time zone)
MAX_PARAMS = 25
MAX_VALUE_CHARS = 100
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
# session_start is the reserved name the reference gives; the others are GA4's automatically
# collected events, also reserved [unverified: not in the reference].
RESERVED_EVENTS = frozenset(
    {"session_start", "first_visit", "first_open", "user_engagement", "app_remove", "ad_click"}
)
# Param prefixes GA4 keeps for itself [unverified: the reference names them for user
# properties only]; a property with such a name is not forwarded.
RESERVED_PREFIXES = ("google_", "ga_", "firebase_")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Segment e-commerce spec -> GA4 recommended events (Segment default subscriptions, reference
# 1.5), plus the remaining spec events whose GA4 recommended event is named in 1.5.
DEFAULT_EVENTS = {
    "Order Completed": "purchase",
    "Product Added": "add_to_cart",
    "Checkout Started": "begin_checkout",
    "Products Searched": "search",
    "Product Viewed": "view_item",
    "Signed Up": "sign_up",
    "Product List Viewed": "view_item_list",
    "Cart Viewed": "view_cart",
    "Payment Info Entered": "add_payment_info",
    "Order Refunded": "refund",
    "Signed In": "login",
    "Product Removed": "remove_from_cart",
    "Product Clicked": "select_item",
    "Product Added to Wishlist": "add_to_wishlist",
    "Promotion Viewed": "view_promotion",
    "Promotion Clicked": "select_promotion",
    # page_view is not in the reference's list: it is GA4's own page event name, sent the way
    # Segment's GA4 destination sends it [impl]; validate with /debug/mp/collect.
    seg.PAGE: "page_view",
}
ECOMMERCE = frozenset(
    {
        "purchase",
        "refund",
        "add_to_cart",
        "remove_from_cart",
        "view_cart",
        "begin_checkout",
        "add_payment_info",
        "add_shipping_info",
        "view_item",
        "view_item_list",
        "select_item",
        "add_to_wishlist",
    }
)
# Properties never forwarded as custom event params: read into other fields, or PII (GA4 must
# not receive PII in params; user data goes hashed in user_data).
NOT_PARAMS = frozenset(
    {
        "products",
        "revenue",
        "total",
        "value",
        "currency",
        "email",
        "phone",
        "first_name",
        "firstname",
        "last_name",
        "lastname",
        "street",
        "address",
        "address_line1",
        "postal_code",
        "zip",
        "birthday",
        "gclid",
        "gbraid",
        "wbraid",
        "fbclid",
    }
)
_NOT_NAME_CHAR = re.compile(r"[^a-z0-9]+")


def _check_event_name(name: str) -> str:
    if not NAME.match(name) or name in RESERVED_EVENTS:
        raise ValueError(
            f"{name!r} is not a GA4 event name (a letter, then letters, digits or _, "
            "at most 40 characters, not reserved)"
        )
    return name


class Ga4Settings(VendorSettings):
    measurement_id: Annotated[
        str, Field(pattern=r"^G-[A-Z0-9]{4,20}$", description="Web data stream id, G-XXXXXXXXXX.")
    ]
    api_secret: Annotated[Secret, Field(description="Measurement Protocol API secret.")]
    region: Annotated[
        Literal["global", "eu"],
        Field(description="eu sends to region1.google-analytics.com (EU data collection)."),
    ] = "global"
    event_mapping: Annotated[
        EventMapping,
        Field(description="Segment event name (or 'page') -> GA4 event name; overrides defaults."),
    ] = {}
    page_views: Annotated[
        bool,
        Field(
            description="Send page calls as page_view. Turn off when the site's Google tag "
            "already records page views."
        ),
    ] = True

    @field_validator("event_mapping")
    @classmethod
    def _ga4_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value.values():
            _check_event_name(name)
        return value


# --- user data ---------------------------------------------------------------------------------


def user_data(event: Mapping[str, Any]) -> dict[str, Any]:
    """user_data per reference 1.4, by `pii.GA4*`: email, phone, names and street hashed
    (Google's rules), city/region/postal code/country in clear. The address parts go in one
    `address[]` entry [unverified: the reference lists the fields, not the array holding them]."""
    read = seg.attributes(event)
    data = pii.GA4.apply(read, arrays=True)
    address = pii.GA4_ADDRESS.apply(read)
    if address:
        data["address"] = [address]
    return data


# --- event params ------------------------------------------------------------------------------


def _items(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = []
    for product in seg.products(event):
        item = {
            "item_id": product.id,
            "item_name": product.name,
            "price": product.price,
            "quantity": whole(product.quantity),
            "item_category": product.category,
            "item_brand": product.brand,
            "item_variant": product.variant,
        }
        item = {k: v for k, v in item.items() if v is not None}
        # GA4 needs an item_id or item_name per item.
        if "item_id" in item or "item_name" in item:
            items.append(item)
    return items


def _scalar(value: Any) -> str | int | float | None:
    """A param value: string (at most 100 characters) or number; anything else is left out."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        return value[:MAX_VALUE_CHARS] if value.strip() else None
    return None


def _param_name(key: str) -> str | None:
    name = _NOT_NAME_CHAR.sub("_", key.strip().lower()).strip("_")
    if not NAME.match(name) or name.startswith(RESERVED_PREFIXES) or name in NOT_PARAMS:
        return None
    return name


def params(event: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The event's params: the documented ones for recommended events; for custom events the
    event's scalar properties (names made GA4-safe, PII left out)."""
    out: dict[str, Any] = {}
    value = seg.value(event)
    currency = seg.currency(event)
    if name in ECOMMERCE or value is not None:
        out["currency"] = currency
        out["value"] = value
    if name in ("purchase", "refund"):
        # The dedup key of purchases; never sent empty (reference 1.2).
        out["transaction_id"] = seg.order_id(event)
        for key in ("coupon", "shipping", "tax", "affiliation"):
            out[key] = _scalar(get(event, f"properties.{key}"))
    elif name in ECOMMERCE:
        out["coupon"] = _scalar(get(event, "properties.coupon"))
    if name in ECOMMERCE:
        items = _items(event)
        if items:
            out["items"] = items
    if name == "search":
        out["search_term"] = seg.search_query(event)
    elif name in ("sign_up", "login"):
        out["method"] = text(event, "properties.method")
    elif name == "page_view":
        out["page_location"] = seg.page_url(event)
        out["page_referrer"] = seg.referrer(event)
        out["page_title"] = text(event, "context.page.title", "properties.title", "name")
    # Session stitching (gclid attribution comes from the session, reference 1.2).
    out["session_id"] = _scalar(get(event, "properties.session_id"))
    out["engagement_time_msec"] = _scalar(get(event, "properties.engagement_time_msec"))
    out = {k: v for k, v in out.items() if v is not None and v != ""}
    if name not in ECOMMERCE and name not in ("search", "sign_up", "login", "page_view"):
        properties = event.get("properties")
        if isinstance(properties, Mapping):
            for key, raw in properties.items():
                param = _param_name(str(key))
                scalar = _scalar(raw)
                if param and scalar is not None and param not in out:
                    out[param] = scalar
    if len(out) > MAX_PARAMS:
        out = dict(list(out.items())[:MAX_PARAMS])
    return out


def custom_event_name(name: str) -> str | None:
    """A Segment event name as a GA4 name: snake_case, at most 40 characters."""
    value = _NOT_NAME_CHAR.sub("_", name.strip().lower()).strip("_")[:40].rstrip("_")
    return value if NAME.match(value) and value not in RESERVED_EVENTS else None


def _micros(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


# --- destination -------------------------------------------------------------------------------


class Ga4(Destination):
    type = "ga4"
    title = "Google Analytics 4"
    vendor = "Google"
    api = "Measurement Protocol"
    category = "analytics"
    docs_url = "https://developers.google.com/analytics/devguides/collection/protocol/ga4"
    Settings = Ga4Settings
    default_consent = ("analytics",)
    max_batch = MAX_EVENTS
    max_batch_bytes = MAX_BODY
    delivers = True

    def url(self, settings: Ga4Settings, ctx: BuildContext) -> str:
        # /debug/mp/collect validates the same body without recording it (reference 1.8).
        path = "/debug/mp/collect" if ctx.test_mode else "/mp/collect"
        query = urlencode(
            {
                "measurement_id": settings.measurement_id,
                "api_secret": settings.api_secret.get_secret_value(),
            }
        )
        return ctx.url(f"{HOSTS[settings.region]}{path}?{query}")

    def _event_name(self, event: Mapping[str, Any], settings: Ga4Settings) -> str | None:
        if (
            event.get("type") == "page"
            and not settings.page_views
            and (seg.PAGE not in settings.event_mapping)
        ):
            return None
        name = seg.map_event(event, DEFAULT_EVENTS, settings.event_mapping, custom_events=False)
        if name:
            return name
        # GA4 takes custom events: other track events go under their snake_case name.
        raw = seg.mapping_key(event) if event.get("type") == "track" else None
        return custom_event_name(raw) if raw else None

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        assert isinstance(settings, Ga4Settings)
        result = BuildResult()
        # One request header (client, user, consent, user data) -> its events, in batch order.
        groups: dict[bytes, tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]] = {}
        for index, record in enumerate(events):
            event = record.data
            if event.get("type") not in ("track", "page"):
                result.skipped[index] = "unsupported_type"
                continue
            name = self._event_name(event, settings)
            if not name:
                result.skipped[index] = "unmapped"
                continue
            when = seg.timestamp(event) or ctx.now
            if ctx.now - when > MAX_AGE:
                result.skipped[index] = "too_old"  # GA4 would accept and silently ignore it
                continue
            # client_id is required; the device id is the anonymousId, and a server-side event
            # with only a userId uses that (our choice: GA4 needs some stable client id).
            client_id = seg.anonymous_id(event) or seg.user_id(event)
            if not client_id:
                result.skipped[index] = "missing_client_id"
                continue
            header: dict[str, Any] = {"client_id": client_id}
            if seg.user_id(event):
                header["user_id"] = seg.user_id(event)
            consent = seg.google_consent(event)
            if consent:
                header["consent"] = consent
            users = user_data(event)
            if users:
                header["user_data"] = users
            # Event-level timestamp_micros overrides the request's [unverified: the reference
            # shows the request-level field only]; it lets one request carry events of
            # different times.
            item = {"name": name, "params": params(event, name), "timestamp_micros": _micros(when)}
            key = orjson.dumps(header, option=orjson.OPT_SORT_KEYS)
            groups.setdefault(key, (header, []))[1].append((index, item))

        url = self.url(settings, ctx)
        for header, items in groups.values():
            self._requests(url, header, items, result)
        return result

    def _requests(
        self,
        url: str,
        header: dict[str, Any],
        items: list[tuple[int, dict[str, Any]]],
        result: BuildResult,
    ) -> None:
        """Cut one client's events into requests of at most 25 events and 130 kB."""
        chunk: list[tuple[int, dict[str, Any]]] = []
        body = b""
        for index, item in items:
            candidate = [*chunk, (index, item)]
            encoded = self._body(header, candidate)
            if len(candidate) <= MAX_EVENTS and len(encoded) < MAX_BODY:
                chunk, body = candidate, encoded
                continue
            if chunk:
                result.requests.append(self._request(url, body, chunk))
            encoded = self._body(header, [(index, item)])
            if len(encoded) >= MAX_BODY:
                result.skipped[index] = "too_large"
                chunk, body = [], b""
            else:
                chunk, body = [(index, item)], encoded
        if chunk:
            result.requests.append(self._request(url, body, chunk))

    @staticmethod
    def _body(header: dict[str, Any], chunk: list[tuple[int, dict[str, Any]]]) -> bytes:
        events = [item for _, item in chunk]
        # The request-level timestamp (reference 1.2) is the first event's.
        body = {**header, "timestamp_micros": events[0]["timestamp_micros"], "events": events}
        return orjson.dumps(body)

    @staticmethod
    def _request(url: str, body: bytes, chunk: list[tuple[int, dict[str, Any]]]) -> HttpRequest:
        return HttpRequest(
            "POST",
            url,
            {"Content-Type": "application/json"},
            body,
            tuple(index for index, _ in chunk),
        )

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        if "/debug/mp/collect" in request.url and 200 <= response.status < 300:
            return [self._validation(response)]
        # Any 2xx is success: the Measurement Protocol never reports payload errors (1.6).
        return [classify_status(response)]

    @staticmethod
    def _validation(response: HttpResponse) -> Outcome:
        """The validation server's verdict: validationMessages non-empty -> the payload is bad."""
        try:
            messages = orjson.loads(response.body).get("validationMessages") or []
        except (orjson.JSONDecodeError, AttributeError):
            messages = []
        if not isinstance(messages, list) or not messages:
            return Outcome(OutcomeKind.SUCCESS)
        first = messages[0] if isinstance(messages[0], dict) else {}
        described = [
            str(m["description"]) for m in messages if isinstance(m, dict) and m.get("description")
        ]
        return Outcome(
            OutcomeKind.DROP,
            str(first.get("validationCode") or "validation_failed"),
            "; ".join(described) or None,
        )


destination = Ga4()
