"""Reading a Segment-spec event the way every ad/analytics vendor needs it: event-name mapping,
e-commerce fields (value, currency, order id, products), user fields, click ids, timestamps and
consent signals. Pure functions over the event dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from eventrelay.destinations.base import Notes
from eventrelay.destinations.common import detect, geo, phone
from eventrelay.destinations.common.normalize import is_hashed
from eventrelay.destinations.common.paths import first, get, number, text, user_paths
from eventrelay.timeutil import epoch_ms, parse_iso

Event = Mapping[str, Any]

# Keys of the event-mapping tables for the non-track types.
PAGE = "page"
SCREEN = "screen"
IDENTIFY = "identify"


def mapping_key(event: Event) -> str | None:
    """The name an event is mapped by: the track event's name, or the call type."""
    kind = event.get("type")
    if kind == "track":
        name = event.get("event")
        return name if isinstance(name, str) else None
    return kind if isinstance(kind, str) else None


def map_event(
    event: Event,
    defaults: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
    custom_events: bool = True,
) -> str | None:
    """The vendor event name, or None (the event is skipped as "unmapped").

    The integration's `event_mapping` wins over the vendor defaults. Matching is exact first,
    then case-insensitive. A track event with no mapping keeps its own name when the vendor
    takes custom events.
    """
    key = mapping_key(event)
    if key is None:
        return None
    for table in (overrides or {}, defaults):
        if key in table:
            return table[key]
        lowered = key.lower()
        for name, target in table.items():
            if name.lower() == lowered:
                return target
    if custom_events and event.get("type") == "track":
        # A custom event keeps its own name, unless that name holds personal data.
        return detect.clean_text(key)
    return None


# --- time --------------------------------------------------------------------------------------


def timestamp(event: Event) -> datetime | None:
    value = event.get("timestamp") or event.get("receivedAt")
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def timestamp_ms(event: Event) -> int | None:
    when = timestamp(event)
    return epoch_ms(when) if when else None


def timestamp_seconds(event: Event) -> int | None:
    ms = timestamp_ms(event)
    return ms // 1000 if ms is not None else None


# --- e-commerce ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Product:
    id: str | None
    name: str | None
    price: float | None
    quantity: float | None
    category: str | None
    brand: str | None
    variant: str | None


def clean(event: Mapping[str, Any], *paths: str) -> str | None:
    """`text` for a free-form value forwarded in clear: None when it holds an email address or
    a phone number (`detect`)."""
    return detect.clean_text(text(event, *paths))


def _product(data: Mapping[str, Any]) -> Product:
    return Product(
        id=clean(data, "product_id", "sku", "id"),
        name=clean(data, "name"),
        price=number(data, "price"),
        quantity=number(data, "quantity"),
        category=clean(data, "category"),
        brand=clean(data, "brand"),
        variant=clean(data, "variant"),
    )


def products(event: Event) -> list[Product]:
    """properties.products, or the single product a Product Added/Viewed event describes."""
    items = get(event, "properties.products")
    if isinstance(items, list):
        return [_product(item) for item in items if isinstance(item, Mapping)]
    properties = event.get("properties")
    if isinstance(properties, Mapping) and text(properties, "product_id", "sku"):
        return [_product(properties)]
    return []


def value(event: Event) -> float | None:
    """The monetary value: properties.value, revenue, total, else the sum of the products."""
    direct = number(event, "properties.value", "properties.revenue", "properties.total")
    if direct is not None:
        return direct
    items = products(event)
    priced = [p for p in items if p.price is not None]
    if not priced:
        return None
    return round(sum((p.price or 0) * (p.quantity or 1) for p in priced), 6)


def currency(event: Event) -> str | None:
    code = text(event, "properties.currency")
    return code.upper() if code and len(code) == 3 else None


NO_CURRENCY = "no_currency"


def money(
    event: Event, default_currency: str | None, notes: Notes, fallback: bool = False
) -> tuple[float | None, str | None]:
    """(value, currency). A value without a currency takes the integration's default_currency;
    without one it is left out (and noted) rather than reported in a currency it may not be in,
    unless the vendor documents its own fallback (`fallback`: Pinterest uses the advertiser's
    currency)."""
    amount = value(event)
    code = currency(event)
    if amount is None or code:
        return amount, code
    if default_currency:
        return amount, default_currency
    if fallback:
        return amount, None
    notes.add(
        "value",
        NO_CURRENCY,
        "value left out: the event has no currency and the integration no default_currency",
    )
    return None, None


def order_id(event: Event) -> str | None:
    return clean(event, "properties.order_id", "properties.orderId", "properties.checkout_id")


def quantity(event: Event) -> int | None:
    items = products(event)
    if not items:
        return None
    return int(sum(p.quantity or 1 for p in items))


def search_query(event: Event) -> str | None:
    return clean(event, "properties.query", "properties.search_term", "properties.search_string")


# --- context ---------------------------------------------------------------------------------


def page_url(event: Event) -> str | None:
    """The page URL without query parameters that carry personal data (`detect.clean_url`)."""
    return detect.clean_url(text(event, "context.page.url", "properties.url"))


def referrer(event: Event) -> str | None:
    return detect.clean_url(text(event, "context.page.referrer", "properties.referrer"))


def ip(event: Event) -> str | None:
    return text(event, "context.ip", "request_ip")


def user_agent(event: Event) -> str | None:
    return text(event, "context.userAgent", "context.user_agent")


def user_id(event: Event) -> str | None:
    return text(event, "userId")


def anonymous_id(event: Event) -> str | None:
    return text(event, "anonymousId")


def user_field(event: Event, *names: str) -> str | None:
    """A user attribute from properties, traits or context.traits (first found)."""
    return text(event, *user_paths(*names))


# User attributes by name -> their names in an event, in order of preference.
_PERSON = {
    "email": ("email",),
    "phone": ("phone",),
    "first_name": ("first_name", "firstName"),
    "last_name": ("last_name", "lastName"),
    "gender": ("gender",),
    "birthday": ("birthday", "birthdate"),
}
# The same for the parts of an address, which may also sit inside an `address` object.
_ADDRESS = {
    "street": ("street", "address_line1"),
    "city": ("city",),
    "state": ("state", "region"),
    "postal_code": ("postal_code", "postalCode", "zip", "zip_code"),
    "country": ("country", "country_code"),
}


def address_field(event: Event, name: str) -> str | None:
    """street/city/state/postal_code/country, also inside an `address` object."""
    aliases = _ADDRESS[name]
    direct = user_field(event, *aliases)
    if direct:
        return direct
    return text(event, *user_paths(*(f"address.{a}" for a in aliases)))


def external_id(event: Event) -> str | None:
    """The one id a vendor takes as `external_id`: an explicit external_id trait, else the
    userId, else the anonymousId."""
    return user_field(event, "external_id", "externalId") or user_id(event) or anonymous_id(event)


def attribute(event: Event, name: str) -> str | None:
    """A user attribute by name: email, phone, first_name, last_name, gender, birthday (from
    properties, traits or context.traits), street, city, state, postal_code, country (also
    inside an address object), external_id, advertising_id (the device's)."""
    if name in _PERSON:
        return user_field(event, *_PERSON[name])
    if name in _ADDRESS:
        return address_field(event, name)
    if name == "external_id":
        return external_id(event)
    if name == "advertising_id":
        return text(event, "context.device.advertisingId")
    raise KeyError(name)


def attributes(
    event: Event, default_country: str | None = None, notes: Notes | None = None
) -> Callable[[str], tuple[str | None, ...]]:
    """The event's user attributes by name, each as its values: the reader the vendor tables of
    `pii` take. "user_ids" is both ids (userId, anonymousId); "phone" is the number in E.164
    (read in the integration's default_country, else the event's country or locale region),
    or nothing, noted, when that cannot be known; any other name one `attribute`."""

    def read(name: str) -> tuple[str | None, ...]:
        if name == "user_ids":
            return (user_id(event), anonymous_id(event))
        if name == "phone":
            return (e164_phone(event, default_country, notes),)
        return (attribute(event, name),)

    return read


def e164_phone(event: Event, default_country: str | None, notes: Notes | None) -> str | None:
    raw = attribute(event, "phone")
    if not raw or is_hashed(raw):
        return raw
    number, reason = phone.to_e164(raw, geo.regions(default_country, event))
    if reason and notes is not None:
        notes.add("phone", reason, phone.MESSAGES[reason])
    return number


def query_param(url: str | None, name: str) -> str | None:
    if not url:
        return None
    try:
        values = parse_qs(urlsplit(url).query).get(name)
    except ValueError:
        return None
    return values[0] if values else None


def click_id(event: Event, name: str) -> str | None:
    """A click id (gclid, fbclid, ttclid, epik, ScCid, li_fat_id) from the event's properties,
    context.campaign, traits, or the page URL's query string. Kept exactly as found (click ids
    are case-sensitive); never a value that looks like an email address or phone number."""
    return detect.clean_text(_click_id(event, name))


def _click_id(event: Event, name: str) -> str | None:
    found = text(
        event,
        f"properties.{name}",
        f"context.campaign.{name}",
        f"context.traits.{name}",
        f"traits.{name}",
    )
    if found:
        return found
    from_url = query_param(page_url(event), name)
    if from_url:
        return from_url
    search = text(event, "context.page.search")
    if search:
        values = parse_qs(search.lstrip("?")).get(name)
        return values[0] if values else None
    return None


# --- consent ---------------------------------------------------------------------------------


def consent(event: Event, category: str) -> bool | None:
    """Whether the event grants a consent category; None when it carries no consent info."""
    prefs = get(event, "context.consent.categoryPreferences")
    if not isinstance(prefs, Mapping):
        return None
    wanted = category.lower()
    for name, granted in prefs.items():
        if str(name).lower() == wanted:
            return granted is True
    return False


TEST_EVENT: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "userId": "eventrelay-test-user",
    "messageId": "eventrelay-test-event",
    "timestamp": "2026-01-01T00:00:00.000Z",
    "properties": {
        "order_id": "eventrelay-test-order",
        "revenue": 1.0,
        "currency": "USD",
        "products": [
            {"product_id": "test-sku", "name": "Test product", "price": 1.0, "quantity": 1}
        ],
    },
    "context": {
        "ip": "203.0.113.1",
        "userAgent": "eventrelay-test/1.0",
        "page": {"url": "https://example.com/checkout/thank-you"},
        "traits": {"email": "test@example.com"},
    },
}
"""The event the admin "test" call sends (timestamp replaced with the current time)."""


def limited_data_use(event: Event) -> bool:
    """The event asks for limited data use (US state privacy laws): context.consent.limitedDataUse
    or properties.limited_data_use set to true."""
    flag = first(event, "context.consent.limitedDataUse", "properties.limited_data_use")
    return flag is True


def google_consent(event: Event) -> dict[str, str] | None:
    """Google consent signals from the Segment consent categories: ad_user_data follows
    "advertising" (or "marketing"), ad_personalization follows "personalization" (or
    "advertising" when no personalization category is present). None without consent info."""
    prefs = get(event, "context.consent.categoryPreferences")
    if not isinstance(prefs, Mapping):
        return None
    names = {str(k).lower() for k in prefs}
    ads = consent(event, "advertising") or consent(event, "marketing")
    personal = consent(event, "personalization") if "personalization" in names else ads
    return {
        "ad_user_data": "GRANTED" if ads else "DENIED",
        "ad_personalization": "GRANTED" if personal else "DENIED",
    }
