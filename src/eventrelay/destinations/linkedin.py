"""LinkedIn Conversions API.

Facts: ../shared/reference/vendors-ads.md section 7 (LinkedIn docs, Segment's integration).
POST https://api.linkedin.com/rest/conversionEvents: one event as a plain object (201), or up to
5,000 [impl] inside {"elements": [...]} with `X-RestLi-Method: BATCH_CREATE` (200 with one
index-aligned `status` per element). Every event names a conversion rule of the ad account, so
an event is only sent when the integration maps its name to a rule id.

A value goes only with a currency (the event's, else the integration's default_currency): an
amount in a guessed currency would misreport revenue, so without one conversionValue is left
out and the preview says so. A refused BATCH_CREATE (400, 413, 422: e.g. more than the 5,000
[impl] LinkedIn takes) is split and resent, never failed whole.

Auth: the stored access token is used directly. With client_id, client_secret and
refresh_token the delivery layer exchanges the refresh token for access tokens instead
(`token_request`) and refreshes once when LinkedIn answers 401.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Self

import orjson
from pydantic import Field, model_validator

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
)
from eventrelay.destinations.classify import body_text, classify_status, json_body
from eventrelay.destinations.common import pii
from eventrelay.destinations.common import segment as seg
from eventrelay.destinations.common.numbers import decimal_string
from eventrelay.destinations.common.paths import user_paths
from eventrelay.destinations.fields import DefaultCurrency, Secret

EVENTS_URL = "https://api.linkedin.com/rest/conversionEvents"
TOKEN_URL = "https://www.linkedin.com/oauth/v2/accessToken"
# Admin test call only. [unverified] Not in the reference: LinkedIn's ad-account docs ("fetch
# ad account"); reading it needs the r_ads scope, which the reference lists next to
# rw_conversions.
ACCOUNT_URL = "https://api.linkedin.com/rest/adAccounts/{account_id}"
RULE_URN = "urn:lla:llaPartnerConversion:"
MAX_AGE_MS = 90 * 24 * 3600 * 1000  # conversionHappenedAt must be within the last 90 days
DEFAULT_TOKEN_LIFETIME = 3600.0  # if the token answer has no expires_in: refresh hourly

# The rule type each Segment e-commerce event fits (reference 0.3). Rules belong to an ad
# account, so this can only guide the operator's `conversion_rules`; it is never applied alone.
RULE_TYPES = {
    "Order Completed": "PURCHASE",
    "Product Added": "ADD_TO_CART",
    "Checkout Started": "START_CHECKOUT",
    "Products Searched": "SEARCH",
    "Product Viewed": "VIEW_CONTENT",
    "Signed Up": "SIGN_UP",
}
SUPPORTED_TYPES = ("track", "page", "screen")

_RULES_HELP = (
    "Segment event name (or 'page' / 'screen' for those calls) -> id of a conversion rule of "
    "this ad account (digits, or the full urn:lla:llaPartnerConversion:<id>). Events with no "
    "rule here are not sent (skipped as 'unmapped'). Create one rule per event with "
    "conversionMethod CONVERSIONS_API and the matching type: "
    + ", ".join(f"{event} -> {rule}" for event, rule in RULE_TYPES.items())
    + "."
)

ConversionRules = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=200)],
        Annotated[str, Field(pattern=r"^(urn:lla:llaPartnerConversion:)?\d{1,32}$")],
    ],
    Field(max_length=500, description=_RULES_HELP),
]


class LinkedinSettings(VendorSettings):
    account_id: Annotated[str, Field(pattern=r"^\d{1,32}$", description="Ad account id.")]
    access_token: Annotated[
        Secret,
        Field(
            description="OAuth access token (rw_conversions). Used as is unless client_id, "
            "client_secret and refresh_token are given."
        ),
    ]
    conversion_rules: ConversionRules = {}
    api_version: Annotated[
        str,
        Field(
            pattern=r"^\d{6}$",
            description="LinkedIn-Version header (YYYYMM); versions are sunset after about a year.",
        ),
    ] = "202603"
    client_id: Annotated[
        str | None,
        Field(min_length=1, max_length=200, description="OAuth app client id (token refresh)."),
    ] = None
    client_secret: Annotated[
        Secret | None, Field(description="OAuth app client secret (token refresh).")
    ] = None
    refresh_token: Annotated[
        Secret | None,
        Field(description="Programmatic refresh token (lives 365 days from first consent)."),
    ] = None
    default_currency: DefaultCurrency = None

    @model_validator(mode="after")
    def _refresh_all_or_none(self) -> Self:
        given = [self.client_id, self.client_secret, self.refresh_token]
        if any(v is not None for v in given) and not all(v is not None for v in given):
            raise ValueError("client_id, client_secret and refresh_token go together")
        return self


def user_ids(event: Mapping[str, Any]) -> list[dict[str, str]]:
    hashed = pii.LINKEDIN.apply(seg.attributes(event))
    ids = [{"idType": id_type, "idValue": value} for id_type, value in hashed.items()]
    # li_fat_id: properties, context.campaign, traits or the landing URL; kept exactly as found.
    fat_id = seg.click_id(event, "li_fat_id")
    if fat_id:
        ids.append({"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": fat_id})
    return ids


def user_info(event: Mapping[str, Any]) -> dict[str, str] | None:
    """Names, company, job title, country in clear text. Only with a first and a last name:
    that pair is what identifies someone (reference 7.2); company or title alone match
    nobody. [unverified] whether LinkedIn accepts a userInfo without names."""
    first = seg.attribute(event, "first_name")
    last = seg.attribute(event, "last_name")
    if not (first and last):
        return None
    info = {
        "firstName": first,
        "lastName": last,
        # `company` is often an object ({"name": ...}): its name first, else the plain string.
        "companyName": seg.clean(
            event, *user_paths("company_name", "companyName", "company.name", "company")
        ),
        # Not properties.title: on page calls that is the page's title.
        "title": seg.clean(
            event, *user_paths("job_title", "jobTitle"), "traits.title", "context.traits.title"
        ),
        **pii.LINKEDIN_USER_INFO.apply(seg.attributes(event)),
    }
    return {k: v for k, v in info.items() if v}


def conversion(
    event: Mapping[str, Any],
    rule: str,
    event_id: str,
    happened_ms: int,
    default_currency: str | None = None,
    notes: Notes | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "conversion": rule if rule.startswith(RULE_URN) else RULE_URN + rule,
        "conversionHappenedAt": happened_ms,
    }
    value, currency = seg.money(event, default_currency, notes or Notes())
    if value is not None and currency:
        item["conversionValue"] = {
            "currencyCode": currency,
            "amount": decimal_string(value),  # a string, per the API
        }
    # The messageId: the same on every retry of this event. LinkedIn dedups on eventId
    # (against an Insight Tag event with the same id, reference 7.2).
    item["eventId"] = event_id
    user: dict[str, Any] = {"userIds": user_ids(event)}  # always present, even empty (else 422)
    info = user_info(event)
    if info:
        user["userInfo"] = info
    item["user"] = user
    return item


def _message(payload: Any) -> str | None:
    """LinkedIn's error text: {"status": 422, "code": "...", "message": "..."}."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict):  # a batch element's error [unverified shape]
        payload = error
    message = payload.get("message")
    code = payload.get("code")
    if isinstance(message, str) and message:
        return f"{code}: {message}" if isinstance(code, str) and code else message
    return None


def _status_outcome(status: int, message: str | None, reason: str) -> Outcome:
    if 200 <= status < 300:
        return Outcome(OutcomeKind.SUCCESS)
    if status in (401, 403):
        return Outcome(OutcomeKind.AUTH, reason, message)
    if status == 429 or status >= 500:
        return Outcome(OutcomeKind.RETRY, reason, message)
    return Outcome(OutcomeKind.DROP, reason, message)


def _element_outcome(element: Any) -> Outcome:
    status = element.get("status") if isinstance(element, dict) else None
    if not isinstance(status, int):
        # No status for this element in a 200 answer: LinkedIn took the batch.
        return Outcome(OutcomeKind.SUCCESS)
    return _status_outcome(status, _message(element) or f"status {status}", f"linkedin_{status}")


def _is_batch(request: HttpRequest) -> bool:
    return request.headers.get("X-RestLi-Method") == "BATCH_CREATE"


class Linkedin(Destination):
    type = "linkedin"
    title = "LinkedIn Conversions API"
    vendor = "LinkedIn"
    api = "Conversions API"
    category = "advertising"
    docs_url = (
        "https://learn.microsoft.com/linkedin/marketing/integrations/ads-reporting/conversions-api"
    )
    api_version = "202603"
    Settings = LinkedinSettings
    default_consent = ("advertising",)
    max_batch = 5000  # [impl] Segment's and Salesforce's batch size; not in LinkedIn's docs
    delivers = True
    token_url = TOKEN_URL
    token_lifetime = DEFAULT_TOKEN_LIFETIME

    def _headers(self, settings: LinkedinSettings, ctx: BuildContext) -> dict[str, str]:
        token = ctx.access_token or settings.access_token.get_secret_value()
        return {
            **bearer(token),
            "LinkedIn-Version": settings.api_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }

    def item(
        self, record: EventRecord, settings: LinkedinSettings, now_ms: int, notes: Notes
    ) -> Item | str:
        """One conversion event, or the reason the event is skipped."""
        event = record.data
        # No defaults: a rule id exists only in the operator's ad account.
        rule = seg.map_event(event, {}, settings.conversion_rules, custom_events=False)
        if not rule:
            return "unmapped"
        happened = seg.timestamp_ms(event) or now_ms
        if now_ms - happened > MAX_AGE_MS:
            return "too_old"
        item = conversion(
            event, rule, record.message_id, happened, settings.default_currency, notes
        )
        if not item["user"]["userIds"] and "userInfo" not in item["user"]:
            return "missing_identifier"  # LinkedIn cannot match it
        return item

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        assert isinstance(settings, LinkedinSettings)
        now_ms = int(ctx.now.timestamp() * 1000)
        result, items = collect(
            events,
            lambda record, notes: self.item(record, settings, now_ms, notes),
            SUPPORTED_TYPES,
        )
        if not items:
            return result
        headers = {**self._headers(settings, ctx), "Content-Type": "application/json"}
        body: Any
        if len(items) == 1:
            body = items[0][1]  # one event: the plain object (201)
        else:
            headers["X-RestLi-Method"] = "BATCH_CREATE"
            body = {"elements": [element for _, element in items]}
        indices = tuple(index for index, _ in items)
        result.requests.append(
            HttpRequest("POST", ctx.url(EVENTS_URL), headers, orjson.dumps(body), indices)
        )
        return result

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        status = response.status
        payload = json_body(response)
        batch = _is_batch(request)
        if 200 <= status < 300:
            elements = payload.get("elements") if isinstance(payload, dict) else None
            if batch and isinstance(elements, list) and len(elements) == len(request.event_indices):
                return [_element_outcome(element) for element in elements]
            # 201 for one event; a batch 2xx without index-aligned statuses was still taken
            # (resending could double-count: eventId dedup is only documented vs the Insight Tag).
            return [Outcome(OutcomeKind.SUCCESS)]
        message = _message(payload) or body_text(response)
        if status == 426:
            # [unverified] not in the reference: LinkedIn answers 426 for a sunset or unknown
            # LinkedIn-Version. Configuration, not the events: stop and keep them until the
            # operator sets a live api_version.
            return [Outcome(OutcomeKind.DISABLE, "http_426", message)]
        if status in (400, 413, 422) and batch:
            # A validation refusal of the whole batch (e.g. one event without userIds) would
            # discard thousands of good events: split to isolate the bad one.
            return [Outcome(OutcomeKind.SPLIT, f"http_{status}", message)]
        # 401 -> AUTH (the worker refreshes once), 403 -> AUTH, 429/5xx -> retry with
        # Retry-After, other 4xx -> drop: the shared classifier, with LinkedIn's message.
        return [classify_status(response, message=message)]

    # --- OAuth -----------------------------------------------------------------------------

    def refresh_credentials(self, settings: VendorSettings) -> tuple[str, str, str] | None:
        assert isinstance(settings, LinkedinSettings)
        if not (settings.client_id and settings.client_secret and settings.refresh_token):
            return None  # the stored access token is used as is
        return (
            settings.client_id,
            settings.client_secret.get_secret_value(),
            settings.refresh_token.get_secret_value(),
        )

    # --- admin "test" ----------------------------------------------------------------------

    def test_build(self, settings: VendorSettings, ctx: BuildContext) -> BuildResult:
        """LinkedIn has no test mode (reference 7.8) and a test conversion would count in the
        advertiser's reports, so the test reads the ad account instead: a 200 proves the
        token, the API version and the account id. A 403 can also mean the token has
        rw_conversions but not r_ads."""
        assert isinstance(settings, LinkedinSettings)
        url = ctx.url(ACCOUNT_URL.format(account_id=settings.account_id))
        return BuildResult([HttpRequest("GET", url, self._headers(settings, ctx), None, ())])


destination = Linkedin()
