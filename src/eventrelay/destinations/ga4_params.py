"""GA4: event names and the params of one event.

Facts: ../shared/reference/vendors-ads.md section 1 (recommended events, limits: 25 params,
names of at most 40 characters, values of at most 100). Google forbids personal data in params
(https://support.google.com/analytics/answer/6366371): custom events forward the event's scalar
properties except those whose name says personal data (`detect.pii_key`) or whose value looks
like an email address or phone number (`detect.personal`), each left out with a note.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from eventrelay.destinations.base import Notes
from eventrelay.destinations.common import detect
from eventrelay.destinations.common import segment as seg
from eventrelay.destinations.common.numbers import count
from eventrelay.destinations.common.paths import get

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
# Properties read into other fields (value, items, ids, click ids): never forwarded again.
READ_ELSEWHERE = frozenset(
    {
        "products",
        "revenue",
        "total",
        "value",
        "currency",
        "client_id",
        "clientid",
        "session_id",
        "session_number",
        "gclid",
        "gbraid",
        "wbraid",
        "fbclid",
    }
)
_NOT_NAME_CHAR = re.compile(r"[^a-z0-9]+")
PERSONAL_DATA = "personal_data"


def check_event_name(name: str) -> str:
    if not NAME.match(name) or name in RESERVED_EVENTS:
        raise ValueError(
            "not a GA4 event name (a letter, then letters, digits or _, at most 40 "
            "characters, not reserved)"
        )
    return name


def custom_event_name(name: str) -> str | None:
    """A Segment event name as a GA4 name: snake_case, at most 40 characters."""
    value = _NOT_NAME_CHAR.sub("_", name.strip().lower()).strip("_")[:40].rstrip("_")
    return value if NAME.match(value) and value not in RESERVED_EVENTS else None


def items(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for product in seg.products(event):
        item = {
            "item_id": product.id,
            "item_name": product.name,
            "price": product.price,
            "quantity": count(product.quantity),  # an integer (Segment's GA4 type)
            "item_category": product.category,
            "item_brand": product.brand,
            "item_variant": product.variant,
        }
        item = {k: v for k, v in item.items() if v is not None}
        # GA4 needs an item_id or item_name per item.
        if "item_id" in item or "item_name" in item:
            out.append(item)
    return out


def scalar(value: Any, free_text: bool = True) -> str | int | float | None:
    """A param value: string (at most 100 characters) or number; anything else is left out, and
    so is free text that holds personal data (`free_text=False` for documented numeric params,
    which a long number must not lose)."""
    if isinstance(value, bool) or value is None or (free_text and detect.personal(value)):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        return value[:MAX_VALUE_CHARS] if value.strip() else None
    return None


def _param_name(key: str) -> str | None:
    name = _NOT_NAME_CHAR.sub("_", key.strip().lower()).strip("_")
    if not NAME.match(name) or name.startswith(RESERVED_PREFIXES) or name in READ_ELSEWHERE:
        return None
    return name


def params(
    event: Mapping[str, Any],
    name: str,
    money: tuple[float | None, str | None],
    session: tuple[Any, Any],
    notes: Notes,
) -> dict[str, Any]:
    """The event's params: the documented ones for recommended events; for custom events the
    event's scalar properties (names made GA4-safe, personal data left out and noted)."""
    out: dict[str, Any] = {}
    value, currency = money
    if name in ECOMMERCE or value is not None:
        out["currency"] = currency
        out["value"] = value
    if name in ("purchase", "refund"):
        # The dedup key of purchases; never sent empty (reference 1.2).
        out["transaction_id"] = seg.order_id(event)
        for key in ("coupon", "affiliation"):
            out[key] = scalar(get(event, f"properties.{key}"))
        for key in ("shipping", "tax"):
            out[key] = scalar(get(event, f"properties.{key}"), free_text=False)
    elif name in ECOMMERCE:
        out["coupon"] = scalar(get(event, "properties.coupon"))
    if name in ECOMMERCE:
        found = items(event)
        if found:
            out["items"] = found
    if name == "search":
        out["search_term"] = seg.search_query(event)
    elif name in ("sign_up", "login"):
        out["method"] = seg.clean(event, "properties.method")
    elif name == "page_view":
        out["page_location"] = seg.page_url(event)
        out["page_referrer"] = seg.referrer(event)
        out["page_title"] = seg.clean(event, "context.page.title", "properties.title", "name")
    # Session stitching (gclid attribution comes from the session, reference 1.2).
    out["session_id"], out["session_number"] = session
    out["engagement_time_msec"] = scalar(
        get(event, "properties.engagement_time_msec"), free_text=False
    )
    out = {k: v for k, v in out.items() if v is not None and v != ""}
    if name not in ECOMMERCE and name not in ("search", "sign_up", "login", "page_view"):
        _custom(event, out, notes)
    if len(out) > MAX_PARAMS:
        out = dict(list(out.items())[:MAX_PARAMS])
    return out


def _custom(event: Mapping[str, Any], out: dict[str, Any], notes: Notes) -> None:
    properties = event.get("properties")
    if not isinstance(properties, Mapping):
        return
    for key, raw in properties.items():
        param = _param_name(str(key))
        if not param or param in out or isinstance(raw, bool | dict | list) or raw is None:
            continue
        if detect.pii_key(str(key)) or detect.personal(str(key)) or detect.personal(raw):
            notes.add(
                f"properties.{key}",
                PERSONAL_DATA,
                "left out of the GA4 params: Google forbids personal data there",
            )
            continue
        value = scalar(raw)
        if value is not None:
            out[param] = value
