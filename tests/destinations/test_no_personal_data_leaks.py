"""Issue 8, property-based: random events carrying personal data in random property names and
values (email addresses, phone numbers in several formats, people's names), and in the user's
traits, go through every ad destination's build, and once through the real admin preview
endpoint; no request (URL, headers, body) may hold an email address, phone number or name in
clear. Hashed user data is fine; that is how the vendors take it.

The one documented exception: LinkedIn's `user.userInfo` carries first and last name in clear
text (LinkedIn matches on them; reference 7.2), so names are not looked for there.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import unquote

import orjson
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from eventrelay.destinations import registry
from eventrelay.destinations.base import BuildContext, EventRecord, HttpRequest
from eventrelay.settings import Settings
from eventrelay.timeutil import parse_iso
from tests.support.vendor import vendor_run

NOW = "2026-11-25T12:00:00Z"
TIME = "2026-11-25T11:59:00.000Z"
EVENTS = ["Order Completed", "Products Searched", "Lead Submitted", "Product Added", "Signed Up"]
RULES = {name: str(100 + i) for i, name in enumerate(EVENTS)}
CONFIGS: dict[str, dict[str, Any]] = {
    "ga4": {"measurement_id": "G-ABC123XYZ", "api_secret": "s"},
    "meta_capi": {"pixel_id": "1234567890", "access_token": "t"},
    "google_ads": {
        "customer_id": "123-456-7890",
        "conversion_action_id": "987654321",
        "oauth_credentials": {"client_id": "c", "client_secret": "s", "refresh_token": "r"},
        "event_mapping": {name: "111" for name in EVENTS[1:]},
        "send_ip_address": True,
    },
    "tiktok": {"pixel_id": "CABCDE1234567890", "access_token": "t"},
    "pinterest": {"ad_account_id": "549755885175", "access_token": "t"},
    "snapchat": {
        "pixel_id": "a1b2c3d4",
        "access_token": "t",
        "event_mapping": {"Lead Submitted": "CUSTOM_EVENT_1"},
    },
    "linkedin": {"account_id": "507404993", "access_token": "t", "conversion_rules": RULES},
    "the_trade_desk": {"advertiser_id": "adv", "tracking_tag_id": "trk", "auth_token": "t"},
}
# Keys the destinations read on purpose (order ids, queries, click ids, custom dimensions...)
# mixed with arbitrary ones: personal data must not get through either way.
VALUE_KEYS = [
    "order_id",
    "orderId",
    "checkout_id",
    "query",
    "search_term",
    "coupon",
    "method",
    "url",
    "referrer",
    "category",
    "gclid",
    "fbclid",
    "ttclid",
    "epik",
    "li_fat_id",
    "ScCid",
    "fbc",
    "fbp",
    "client_id",
    "adid",
    "td1",
    "td7",
    "note",
    "contact",
    "info",
    "Signup Source",
    "x",
    "affiliation",
]
NAME_KEYS = [
    "name",
    "Name",
    "customer_name",
    "customerName",
    "firstName",
    "first_name",
    "last_name",
    "LastName",
    "full_name",
    "fullName",
    "billing_name",
    "user_name",
    "surname",
]

letters = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=9)
emails = st.builds(
    lambda local, tag, domain, tld, upper: (
        f"{local}{'+' + tag if tag else ''}@{domain}.{tld}".upper()
        if upper
        else f"{local}{'+' + tag if tag else ''}@{domain}.{tld}"
    ),
    letters,
    st.one_of(st.just(""), letters),
    letters,
    st.sampled_from(["com", "org", "de", "io", "co.uk"]),
    st.booleans(),
)
area = st.integers(200, 989)
line = st.integers(2000000, 9899999)


def _formats(a: int, n: int, fmt: int) -> str:
    s = str(n)
    return [
        f"+1 ({a}) {s[:3]}-{s[3:]}",
        f"({a}) {s[:3]}-{s[3:]}",
        f"{a}.{s[:3]}.{s[3:]}",
        f"{a}{s}",
        f"+1-{a}-{s[:3]}-{s[3:]}",
        f"+44 20 {s[:4]} {s[4:]}0",
        f"0044 20 {s[:4]} {s[4:]}0",
        f"+33 6 {s[:2]} {s[2:4]} {s[4:6]} {s[6:]}4",
        f"call me on {a} {s[:3]} {s[3:]} please",
    ][fmt]


phones = st.builds(_formats, area, line, st.integers(0, 8)).filter(
    lambda p: len(set(p)) > 6  # distinctive digits, so a match cannot be a coincidence
)
# A person's name: words that start with "Zq" (no field name or value of ours does; hex hashes
# have no z or q), so finding one in a request can only mean the name leaked.
words = st.text(alphabet="ghijklmnopqrstuvwxyz", min_size=4, max_size=7).map(lambda w: "Zq" + w)
names = st.builds(lambda a, b: f"{a} {b}", words, words)


@st.composite
def events(draw: st.DrawFn) -> tuple[dict[str, Any], list[str], list[str], list[str]]:
    """(event, its emails, its phones, its names)."""
    found_emails: list[str] = []
    found_phones: list[str] = []
    found_names: list[str] = []

    def pii_value() -> str:
        if draw(st.booleans()):
            value = draw(emails)
            found_emails.append(value)
        else:
            value = draw(phones)
            found_phones.append(value)
        return value

    properties: dict[str, Any] = {"revenue": 20, "currency": "USD", "plan": "pro"}
    for key in draw(st.lists(st.sampled_from(VALUE_KEYS), max_size=5, unique=True)):
        properties[key] = pii_value()
    for key in draw(st.lists(st.sampled_from(NAME_KEYS), max_size=3, unique=True)):
        value = draw(names)
        found_names.append(value)
        properties[key] = value
    if draw(st.booleans()):
        properties[pii_value()] = "yes"  # personal data as a property *name*
    if draw(st.booleans()):
        properties["products"] = [{"product_id": pii_value(), "name": pii_value(), "price": 5}]
    traits: dict[str, Any] = {"tdid": "tdid-0001"}
    if draw(st.booleans()):
        traits["email"] = pii_value()
    if draw(st.booleans()):
        traits["phone"] = pii_value()
    if draw(st.booleans()):
        first, last = draw(words), draw(words)
        found_names.extend([first, last])
        traits.update(firstName=first, lastName=last)
    url = "https://shop.example.com/p/12345?utm_source=ads"
    if draw(st.booleans()):
        url += "&email=" + pii_value().replace("@", "%40")
    user_id = pii_value() if draw(st.booleans()) else "user-1"
    event = {
        "type": draw(st.sampled_from(["track", "track", "page"])),
        "event": draw(st.sampled_from(EVENTS)),
        "userId": user_id,
        "anonymousId": "anon-1",
        "messageId": "msg-1",
        "timestamp": TIME,
        "properties": properties,
        "context": {
            "ip": "203.0.113.7",
            "userAgent": "Mozilla/5.0",
            "locale": draw(st.sampled_from(["en-US", "de-DE", "fr-FR"])),
            "page": {"url": url, "title": "Shop"},
            "traits": traits,
        },
    }
    return event, found_emails, found_phones, found_names


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _without_linkedin_user_info(body: Any) -> Any:
    """LinkedIn documents first and last name in clear in user.userInfo: not looked at."""
    body = copy.deepcopy(body)
    for element in body.get("elements", [body]) if isinstance(body, dict) else []:
        if isinstance(element, dict) and isinstance(element.get("user"), dict):
            element["user"].pop("userInfo", None)
    return body


def request_text(type_: str, url: str, headers: dict[str, str], body: Any) -> str:
    if type_ == "linkedin":
        body = _without_linkedin_user_info(body)
    text = url + " " + orjson.dumps(headers).decode() + " " + orjson.dumps(body).decode()
    return unquote(text).lower()


def assert_clean(text: str, emails: list[str], phones: list[str], names: list[str]) -> None:
    for email in emails:
        assert email.lower() not in text, email
    for phone in phones:
        digits = _digits(phone)
        assert phone.lower() not in text, phone
        assert digits not in text, phone
        assert digits[-9:] not in text, phone  # the national part, as E.164 would write it
    for name in names:
        for word in name.lower().split():
            assert word not in text, name


def _body(request: HttpRequest) -> Any:
    return orjson.loads(request.body) if request.body else None


@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(events(), min_size=1, max_size=4))
def test_no_destination_sends_personal_data_in_clear(
    batch: list[tuple[dict[str, Any], list[str], list[str], list[str]]],
) -> None:
    ctx = BuildContext(now=parse_iso(NOW), access_token="token")
    emails = [e for _, found, _, _ in batch for e in found]
    phones = [p for _, _, found, _ in batch for p in found]
    names = [n for _, _, _, found in batch for n in found]
    for type_, config in CONFIGS.items():
        destination = registry.get(type_)
        assert destination is not None
        settings_ = destination.Settings.model_validate(config)
        records = [EventRecord.from_event(copy.deepcopy(event)) for event, *_ in batch]
        built = destination.build(records, settings_, ctx)
        for request in built.requests:
            text = request_text(type_, request.url, dict(request.headers), _body(request))
            assert_clean(text, emails, phones, names)


async def test_no_personal_data_through_the_preview_endpoint(settings: Settings) -> None:
    """The same property through POST /v1/admin/integrations/{id}/preview, for every type."""
    drawn: list[tuple[dict[str, Any], list[str], list[str], list[str]]] = []

    @hyp_settings(max_examples=40, deadline=None, database=None)
    @given(event=events())
    def draw(event: tuple[dict[str, Any], list[str], list[str], list[str]]) -> None:
        drawn.append(event)

    draw()
    emails = [e for _, found, _, _ in drawn for e in found]
    phones = [p for _, _, found, _ in drawn for p in found]
    names = [n for _, _, _, found in drawn for n in found]
    batch = [{k: v for k, v in event.items() if k != "messageId"} for event, *_ in drawn]
    # One plain purchase every type sends, so each type is seen building requests.
    batch.append(
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "user-2",
            "properties": {"order_id": "O-2", "revenue": 5, "currency": "USD", "gclid": "G-2"},
            "context": {
                "ip": "203.0.113.7",
                "userAgent": "Mozilla/5.0",
                "page": {"url": "https://shop.example.com/thanks"},
                "traits": {"email": "base@example.com", "tdid": "tdid-2"},
            },
        }
    )
    emails.append("base@example.com")
    async with vendor_run(settings, "meta_capi", CONFIGS["meta_capi"]) as run:
        api = run.pipe.api
        built: dict[str, int] = {}
        for type_, config in CONFIGS.items():
            made = await api.make_integration(run.source["id"], type=type_, config=config)
            r = await api.post(
                f"/v1/admin/integrations/{made['id']}/preview", json={"batch": batch[-100:]}
            )
            assert r.status_code == 200, r.text
            for request in r.json()["requests"]:
                built[type_] = built.get(type_, 0) + 1
                text = request_text(type_, request["url"], request["headers"], request["body"])
                assert_clean(text, emails, phones, names)
        assert set(built) == set(CONFIGS)  # every type built requests
        assert run.vendor.requests == []
