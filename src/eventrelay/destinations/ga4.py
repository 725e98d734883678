"""Google Analytics 4, Measurement Protocol.

Facts: ../shared/reference/vendors-ads.md section 1. POST /mp/collect?measurement_id=&api_secret=
with {"client_id", "user_id", "consent", "user_data", "events": [...]}. Client, user, consent
and user data are request-level, so one request carries the events of one client/user only:
a batch is grouped per (client, user, consent, user data), then cut at 25 events and 130 kB.
The Measurement Protocol answers 2xx to anything it receives and never reports payload errors,
so 2xx is success; only the /debug/mp/collect validation endpoint (admin test call) says what
is wrong with a payload.

client_id and session_id come from the GA tag's cookie when the event carries it
(`ga4_client`); params are built by `ga4_params`, which keeps personal data out. user_id is
never an email address or phone number (Google's policy: no PII in user_id,
https://support.google.com/analytics/answer/6366371); such a user_id is left out and noted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from pydantic import AfterValidator, Field

from eventrelay.destinations import ga4_client
from eventrelay.destinations.base import (
    BuildContext,
    BuildResult,
    Destination,
    EventRecord,
    HttpRequest,
    HttpResponse,
    Notes,
    Outcome,
    OutcomeKind,
    VendorSettings,
)
from eventrelay.destinations.classify import classify_status
from eventrelay.destinations.common import detect, pii
from eventrelay.destinations.common import segment as seg
from eventrelay.destinations.fields import (
    MAPPING,
    DefaultCountry,
    DefaultCurrency,
    MappingKey,
    Secret,
    name_field,
)
from eventrelay.destinations.ga4_params import check_event_name, custom_event_name, params

HOSTS = {"global": "https://www.google-analytics.com", "eu": "https://region1.google-analytics.com"}
MAX_EVENTS = 25
MAX_BODY = 130_000  # bytes; the reference says "POST body < 130 kB"
MAX_AGE = timedelta(hours=72)  # backdating limit (3 calendar days in the property's time zone)
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

# GA4 takes custom event names: a mapped name is checked for GA4's name rules, not a list.
Ga4EventName = Annotated[str, name_field(), AfterValidator(check_event_name)]


class Ga4Settings(VendorSettings):
    measurement_id: Annotated[
        str, Field(pattern=r"^G-[A-Z0-9]{4,20}$", description="Web data stream id, G-XXXXXXXXXX.")
    ]
    api_secret: Annotated[Secret, Field(description="Measurement Protocol API secret.")]
    region: Annotated[
        Literal["global", "eu"],
        Field(description="eu sends to region1.google-analytics.com (EU data collection)."),
    ] = "global"
    event_mapping: Annotated[dict[MappingKey, Ga4EventName], MAPPING] = {}
    page_views: Annotated[
        bool,
        Field(
            description="Send page calls as page_view. Turn off when the site's Google tag "
            "already records page views."
        ),
    ] = True
    default_country: DefaultCountry = None
    default_currency: DefaultCurrency = None


# --- user data ---------------------------------------------------------------------------------


def user_data(
    event: Mapping[str, Any], settings: Ga4Settings, notes: Notes | None = None
) -> dict[str, Any]:
    """user_data per reference 1.4, by `pii.GA4*`: email, phone, names and street hashed
    (Google's rules), city/region/postal code/country in clear. The address parts go in one
    `address[]` entry [unverified: the reference lists the fields, not the array holding them]."""
    read = seg.attributes(event, settings.default_country, notes)
    data = pii.GA4.apply(read, arrays=True)
    address = pii.GA4_ADDRESS.apply(read)
    if address:
        data["address"] = [address]
    return data


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
        return custom_event_name(raw) if raw and not detect.personal(raw) else None

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
            notes = Notes()
            built = self._event(event, name, when, settings, notes)
            result.keep_notes(index, notes)
            if built is None:
                result.skipped[index] = "missing_client_id"
                continue
            header, item = built
            key = orjson.dumps(header, option=orjson.OPT_SORT_KEYS)
            groups.setdefault(key, (header, []))[1].append((index, item))

        url = self.url(settings, ctx)
        for header, items in groups.values():
            self._requests(url, header, items, result)
        return result

    def _event(
        self,
        event: Mapping[str, Any],
        name: str,
        when: datetime,
        settings: Ga4Settings,
        notes: Notes,
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(request header, event item), or None without any usable client id."""
        client_id = ga4_client.resolve(event, notes)
        if not client_id:
            return None
        header: dict[str, Any] = {"client_id": client_id}
        user_id = seg.user_id(event)
        if user_id and detect.personal(user_id):
            notes.add(
                "user_id",
                ga4_client.PERSONAL_DATA,
                "user_id left out: it looks like an email address or phone number, which "
                "Google forbids in user_id",
            )
        elif user_id:
            header["user_id"] = user_id
        consent = seg.google_consent(event)
        if consent:
            header["consent"] = consent
        users = user_data(event, settings, notes)
        if users:
            header["user_data"] = users
        money = seg.money(event, settings.default_currency, notes)
        session = ga4_client.session(event, settings.measurement_id)
        # Event-level timestamp_micros overrides the request's [unverified: the reference
        # shows the request-level field only]; it lets one request carry events of
        # different times.
        item = {
            "name": name,
            "params": params(event, name, money, session, notes),
            "timestamp_micros": _micros(when),
        }
        return header, item

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
