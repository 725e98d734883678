"""Google Ads, click conversion upload with enhanced conversions.

Facts: ../shared/reference/vendors-ads.md section 3. POST
https://googleads.googleapis.com/{version}/customers/{id}:uploadClickConversions with up to
2,000 conversions and `partialFailure: true`: the answer is 200 even when rows fail, and each
failed row is named by index in `partialFailureError`. Auth is an OAuth access token from the
stored refresh token (the delivery layer caches it and refreshes once on 401).

Each upload targets a conversion action instead of an event name: Order Completed goes to the
configured `conversion_action_id`, `event_mapping` sends other events to other actions, and
everything else is skipped as "unmapped".

userIpAddress is opt-in (`send_ip_address`, off by default). Google defines it as "the IP
address of the customer when they arrived on the landing page after an ad click ... not the
advertiser's server" and says it "does not support IP address matching for end users in the
European Economic Area (EEA), United Kingdom (UK), or Switzerland (CH). Add logic to
conditionally exclude sharing IP addresses from users from these regions"
(https://developers.google.com/google-ads/api/diff-tool/v20/versus-v19/diffs/services/conversion_upload_service).
So even when enabled it is left out for an event whose country (`geo.countries`: location,
address, locale) is in those regions, and, the safer reading, for an event whose country is
unknown. A value without a currency (event's or `default_currency`) is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from eventrelay.destinations import google_ads_failures as failures
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
    json_requests,
)
from eventrelay.destinations.classify import (
    body_text,
    classify_status,
    json_body,
    retry_after_seconds,
)
from eventrelay.destinations.common import geo, pii
from eventrelay.destinations.common import segment as seg
from eventrelay.destinations.fields import (
    DefaultCountry,
    DefaultCurrency,
    MappingKey,
    NonEmpty,
    Secret,
    name_field,
)

BASE_URL = "https://googleads.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
MAX_CONVERSIONS = 2000
DEFAULT_TOKEN_LIFETIME = 3600.0  # Google access tokens live about an hour
# The action a Segment event goes to by default: the configured conversion_action_id.
DEFAULT_ACTION = "default"
DEFAULT_EVENTS = {"Order Completed": DEFAULT_ACTION}

REGION_EXCLUDED = "region_excluded"
COUNTRY_UNKNOWN = "country_unknown"


def _action_id(action: str) -> str:
    if not action.isascii() or not action.isdigit() or len(action) > 20:
        raise ValueError("not a conversion action id (digits)")
    return action


ActionId = Annotated[str, name_field(), AfterValidator(_action_id)]

CustomerId = Annotated[
    str,
    Field(pattern=r"^\d{3}-?\d{3}-?\d{4}$", description="10-digit customer id, e.g. 123-456-7890."),
]


class OAuthCredentials(VendorSettings):
    client_id: NonEmpty
    client_secret: Secret
    refresh_token: Secret


class GoogleAdsSettings(VendorSettings):
    customer_id: CustomerId
    conversion_action_id: Annotated[str, Field(pattern=r"^\d{1,20}$")]
    oauth_credentials: OAuthCredentials
    login_customer_id: Annotated[
        CustomerId | None, Field(description="Manager (MCC) account id, when used.")
    ] = None
    api_version: Annotated[
        str, Field(pattern=r"^v\d{2,3}$", description="Google Ads API version, e.g. v26.")
    ] = "v26"
    developer_token: Annotated[
        Secret | None,
        Field(
            description="Optional: developer tokens were sunset on 2026-09-09 and the API "
            "ignores the header; set only if your API version still wants it."
        ),
    ] = None
    event_mapping: Annotated[
        dict[MappingKey, ActionId],
        Field(
            max_length=500,
            description="Segment event name (or 'page') -> conversion action id (digits). "
            "Order Completed goes to conversion_action_id unless mapped here; other events "
            "are not uploaded.",
        ),
    ] = {}
    send_ip_address: Annotated[
        bool,
        Field(
            description="Send context.ip as userIpAddress. Only when that is the user's IP at "
            "the landing page after the ad click; never sent for users in the EEA, the UK or "
            "Switzerland, nor when the event names no country."
        ),
    ] = False
    default_country: DefaultCountry = None
    default_currency: DefaultCurrency = None


def _digits(customer_id: str) -> str:
    return customer_id.replace("-", "")


def conversion_time(event: Mapping[str, Any], ctx: BuildContext) -> str:
    """ "yyyy-mm-dd hh:mm:ss+00:00" (reference 3.2: the time zone is required)."""
    when = (seg.timestamp(event) or ctx.now).astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S+00:00")


def user_identifiers(
    event: Mapping[str, Any], default_country: str | None = None, notes: Notes | None = None
) -> list[dict[str, str]]:
    """hashedEmail and hashedPhoneNumber, one per UserIdentifier: the only identifiers a click
    conversion upload takes (reference 3.2), normalised by Google's rules (3.4)."""
    found = pii.GOOGLE_ADS.apply(seg.attributes(event, default_country, notes))
    return [{field: value} for field, value in found.items()]


def click_id(event: Mapping[str, Any]) -> dict[str, str]:
    """Exactly one of gclid, gbraid, wbraid (both braids set is an error), kept as received."""
    for name in ("gclid", "gbraid", "wbraid"):
        found = seg.click_id(event, name)
        if found:
            return {name: found}
    return {}


def ip_address(event: Mapping[str, Any], settings: GoogleAdsSettings, notes: Notes) -> str | None:
    """context.ip when the integration opts in and the user is known to be outside the EEA,
    the UK and Switzerland."""
    ip = seg.ip(event)
    if not ip or not settings.send_ip_address:
        return None
    countries = geo.countries(event)
    excluded = [c.upper() for c in countries if c in geo.EEA_UK_CH]
    if excluded:
        notes.add(
            "userIpAddress",
            REGION_EXCLUDED,
            f"IP address left out: the user is in {excluded[0]}, and Google Ads takes no IP "
            "addresses of users in the EEA, the UK or Switzerland",
        )
        return None
    if not countries:
        notes.add(
            "userIpAddress",
            COUNTRY_UNKNOWN,
            "IP address left out: the event names no country (context.location.country, "
            "address or locale), so it cannot be shown to be outside the EEA, UK and CH",
        )
        return None
    return ip


class GoogleAds(Destination):
    type = "google_ads"
    title = "Google Ads Enhanced Conversions"
    vendor = "Google"
    api = "Enhanced Conversions"
    category = "advertising"
    docs_url = "https://developers.google.com/google-ads/api/docs/conversions/upload-clicks"
    api_version = "v26"
    Settings = GoogleAdsSettings
    default_consent = ("advertising",)
    max_batch = MAX_CONVERSIONS
    delivers = True
    token_url = TOKEN_URL
    token_lifetime = DEFAULT_TOKEN_LIFETIME

    # --- OAuth ---------------------------------------------------------------------------------

    def refresh_credentials(self, settings: VendorSettings) -> tuple[str, str, str]:
        assert isinstance(settings, GoogleAdsSettings)
        credentials = settings.oauth_credentials
        return (
            credentials.client_id,
            credentials.client_secret.get_secret_value(),
            credentials.refresh_token.get_secret_value(),
        )

    # --- build ---------------------------------------------------------------------------------

    def url(self, settings: GoogleAdsSettings, ctx: BuildContext) -> str:
        customer = _digits(settings.customer_id)
        return ctx.url(
            f"{BASE_URL}/{settings.api_version}/customers/{customer}:uploadClickConversions"
        )

    def headers(self, settings: GoogleAdsSettings, ctx: BuildContext) -> dict[str, str]:
        headers = bearer(ctx.access_token or "")
        if settings.login_customer_id:
            headers["login-customer-id"] = _digits(settings.login_customer_id)
        if settings.developer_token:
            headers["developer-token"] = settings.developer_token.get_secret_value()
        return headers

    def conversion(
        self, record: EventRecord, settings: GoogleAdsSettings, ctx: BuildContext, notes: Notes
    ) -> Item | str:
        """One conversion, or the reason the event is skipped."""
        event = record.data
        action = seg.map_event(event, DEFAULT_EVENTS, settings.event_mapping, custom_events=False)
        if not action:
            return "unmapped"
        if action == DEFAULT_ACTION:
            action = settings.conversion_action_id
        identifiers = user_identifiers(event, settings.default_country, notes)
        click = click_id(event)
        if not click and not identifiers:
            return "missing_identifier"  # nothing Google could attribute the conversion to
        customer = _digits(settings.customer_id)
        item: Item = {
            "conversionAction": f"customers/{customer}/conversionActions/{action}",
            "conversionDateTime": conversion_time(event, ctx),
            **click,
            # The dedup key: the order id, else the event's messageId, both stable across
            # retries (and neither holds PII, which orderId must not).
            "orderId": seg.order_id(event) or record.message_id,
        }
        value, currency = seg.money(event, settings.default_currency, notes)
        if value is not None:
            item["conversionValue"] = value
        if currency:
            item["currencyCode"] = currency
        if identifiers:
            item["userIdentifiers"] = identifiers
        ip = ip_address(event, settings, notes)
        if ip:
            item["userIpAddress"] = ip
        consent = seg.google_consent(event)
        if consent:
            # Only adUserData: adPersonalization is refused outside customer-match uploads (3.7).
            item["consent"] = {"adUserData": consent["ad_user_data"]}
        return item

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        assert isinstance(settings, GoogleAdsSettings)
        result, items = collect(
            events,
            lambda record, notes: self.conversion(record, settings, ctx, notes),
            ("track", "page"),
        )
        result.requests = json_requests(
            self.url(settings, ctx),
            self.headers(settings, ctx),
            items,
            MAX_CONVERSIONS,
            lambda conversions: {
                "conversions": conversions,
                "partialFailure": True,  # required (PARTIAL_FAILURE_MODE_REQUIRED otherwise)
                "validateOnly": ctx.test_mode,  # the admin test call: validated, not executed
            },
        )
        return result

    # --- classify ------------------------------------------------------------------------------

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        count = len(request.event_indices)
        data = json_body(response) if response.body else {}
        if not isinstance(data, dict):
            return [classify_status(response)]
        if 200 <= response.status < 300:
            return self._partial(data, count)
        error = data.get("error")
        if not isinstance(error, dict):
            return [classify_status(response)]
        return self._rpc_error(response, error, count)

    def _partial(self, data: dict[str, Any], count: int) -> list[Outcome]:
        """200: every row succeeded except those `partialFailureError` names by index."""
        failure = data.get("partialFailureError")
        if not isinstance(failure, dict) or not failure:
            return [Outcome(OutcomeKind.SUCCESS)] * max(count, 1)
        per_row: dict[int, list[Outcome]] = {}
        unplaced: list[Outcome] = []
        for error in failures.errors(failure):
            outcome = failures.row_outcome(error)
            row = failures.row_index(error)
            if row is not None and 0 <= row < count:
                per_row.setdefault(row, []).append(outcome)
            else:
                unplaced.append(outcome)
        results = data.get("results")
        outcomes = []
        for row in range(max(count, 1)):
            if row in per_row:
                outcomes.append(failures.worst(per_row[row]))
            elif unplaced and failures.row_failed(results, row):
                # An error without an index: it belongs to the rows whose result is empty.
                outcomes.append(failures.worst(unplaced))
            else:
                outcomes.append(Outcome(OutcomeKind.SUCCESS))
        return outcomes

    def _rpc_error(
        self, response: HttpResponse, error: dict[str, Any], count: int
    ) -> list[Outcome]:
        """Non-200: a google.rpc.Status for the whole request (nothing was executed)."""
        status = response.status
        errors = failures.errors(error)
        message = str(error.get("message") or "") or body_text(response)
        if errors and errors[0].get("message"):
            message = f"{message} {errors[0]['message']}".strip()
        codes = [failures.error_code(e) for e in errors]
        reason = codes[0][1] if codes else str(error.get("status") or f"http_{status}")
        if status in (401, 403) or any(
            category in failures.AUTH_CATEGORIES for category, _ in codes
        ):
            # 401: the worker refreshes the token once; 403 PERMISSION_DENIED: the account or
            # OAuth client lacks access, nothing in the batch can succeed until it is fixed.
            return [Outcome(OutcomeKind.AUTH, reason, message)]
        if status in (409, 429) or (status >= 500 and status != 501):
            # RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED.
            return [
                Outcome(OutcomeKind.RETRY, reason, message, retry_after_seconds(response.headers))
            ]
        if any(code in failures.TRANSIENT_CODES for _, code in codes):
            return [Outcome(OutcomeKind.RETRY, reason, message)]
        if status == 404:
            # NOT_FOUND: the customer (or API version) does not exist; every event would fail
            # the same way, so the integration stops with its events kept.
            return [Outcome(OutcomeKind.DISABLE, reason, message)]
        if "TOO_MANY_CONVERSIONS_IN_REQUEST" in {code for _, code in codes} and count > 1:
            return [Outcome(OutcomeKind.SPLIT, reason, message)]
        # INVALID_ARGUMENT naming rows: those are dropped, the rest was not executed and is
        # sent again without them.
        bad: dict[int, Outcome] = {}
        for item in errors:
            row = failures.row_index(item)
            if row is not None and 0 <= row < count:
                bad.setdefault(
                    row, Outcome(OutcomeKind.DROP, failures.error_code(item)[1], message)
                )
        if bad and count > 1:
            retry = Outcome(OutcomeKind.RETRY, "batch_rejected", message)
            return [bad.get(row, retry) for row in range(count)]
        return [Outcome(OutcomeKind.DROP, reason, message)]


destination = GoogleAds()
