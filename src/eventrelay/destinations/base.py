"""The destination contract: one module per vendor exports one `Destination` instance.

A destination is pure: `build` turns events into `HttpRequest`s and `classify` turns a response
into per-event outcomes. The delivery layer does all I/O (HTTP, OAuth token exchange, queue).
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict

Event = dict[str, Any]


class EventRecord:
    """One queued event: its stored JSON bytes and, decoded on first use, its data.

    Destinations that forward events unchanged (webhook) use `raw` and never pay for decoding.
    """

    __slots__ = ("_data", "message_id", "raw")

    def __init__(self, message_id: str, raw: bytes, data: Event | None = None) -> None:
        self.message_id = message_id
        self.raw = raw
        self._data = data

    @property
    def data(self) -> Event:
        if self._data is None:
            self._data = orjson.loads(self.raw)
        return self._data

    @classmethod
    def from_event(cls, event: Event) -> EventRecord:
        return cls(str(event.get("messageId", "")), orjson.dumps(event), event)


class VendorSettings(BaseModel):
    """Base of every Settings model: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def endpoint_values(model: builtins.type[BaseModel], config: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the fields marked as endpoints (`fields.ENDPOINT`) in a config as JSON (by
    alias; defaults where the config leaves a field out)."""
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("x-endpoint"):
            key = info.alias or name
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            values[key] = config.get(key, default)
    return values


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    # Which events of the batch handed to `build` this request carries (by index).
    event_indices: tuple[int, ...]
    # The URL comes from user config (webhook): apply the SSRF guard when connecting.
    user_target: bool = False


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class OutcomeKind(enum.StrEnum):
    SUCCESS = "success"
    RETRY = "retry"  # transient: back off and try again
    DROP = "drop"  # permanent for this event: discard with a reason
    AUTH = "auth"  # credentials refused: integration goes to error, events are kept
    DISABLE = "disable"  # vendor says stop (410 Gone): integration goes to error, events kept
    SPLIT = "split"  # a batch was refused as a whole for one bad event: resend one by one


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    reason: str | None = None  # machine-readable discard/retry reason, e.g. "http_400"
    message: str | None = None  # the vendor's words, for last_error_message and failures
    retry_after: float | None = None  # seconds, from Retry-After or the vendor's body


@dataclass(frozen=True, slots=True)
class Note:
    """Something `build` left out of (or put in place of) an event's data, and why: the preview
    shows it so a user can tell a missing field from a bug."""

    field: str  # what: a user attribute ("phone"), a vendor field ("userIpAddress", "value")
    reason: str  # machine-readable: no_country_code, region_excluded, no_currency, ...
    message: str  # for people


class Notes:
    """The notes of one event. Adding the same (field, reason) twice keeps one."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Note] = []

    def add(self, field: str, reason: str, message: str) -> None:
        if not any(n.field == field and n.reason == reason for n in self.items):
            self.items.append(Note(field, reason, message))

    def __bool__(self) -> bool:
        return bool(self.items)


@dataclass(slots=True)
class BuildResult:
    requests: list[HttpRequest] = field(default_factory=list)
    # Events that will not be sent, by index, with the reason (e.g. "unmapped").
    skipped: dict[int, str] = field(default_factory=dict)
    # Per event, what was left out of what is sent and why (the admin preview shows them).
    notes: dict[int, list[Note]] = field(default_factory=dict)

    def keep_notes(self, index: int, notes: Notes) -> None:
        if notes:
            self.notes[index] = list(notes.items)


Item = dict[str, Any]


def collect(
    events: Sequence[EventRecord],
    item: Callable[[EventRecord, Notes], Item | str],
    types: tuple[str, ...],
) -> tuple[BuildResult, list[tuple[int, Item]]]:
    """The usual first half of `build`: events whose type is not in `types` are skipped as
    "unsupported_type"; `item` turns each other event into the entry to send, or returns the
    reason it is skipped, and notes what it left out. Returns the result (skips and notes so
    far) and the (index, entry) pairs."""
    result = BuildResult()
    items: list[tuple[int, Item]] = []
    for index, record in enumerate(events):
        notes = Notes()
        built = item(record, notes) if record.data.get("type") in types else "unsupported_type"
        result.keep_notes(index, notes)
        if isinstance(built, str):
            result.skipped[index] = built
        else:
            items.append((index, built))
    return result, items


def _data(entries: list[Item]) -> Any:
    return {"data": entries}


def json_requests(
    url: str,
    headers: Mapping[str, str],
    items: Sequence[tuple[int, Item]],
    size: int,
    body: Callable[[list[Item]], Any] = _data,
) -> list[HttpRequest]:
    """The usual second half of `build`: POST the entries as JSON, at most `size` a request,
    each request's body `body(entries)` ({"data": entries} unless told otherwise)."""
    headers = {"Content-Type": "application/json", **headers}
    requests: list[HttpRequest] = []
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        requests.append(
            HttpRequest(
                "POST",
                url,
                headers,
                orjson.dumps(body([entry for _, entry in chunk])),
                tuple(index for index, _ in chunk),
            )
        )
    return requests


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True, slots=True)
class BuildContext:
    now: datetime
    # Operator overrides of vendor base URLs, from EVENTRELAY_VENDOR_BASE_URLS (tests point them
    # at local stand-ins): `base_url` for the vendor's API, `urls` for any other endpoint the
    # vendor module names (e.g. "oauth").
    base_url: str | None = None
    # Token obtained by the delivery layer for OAuth destinations.
    access_token: str | None = None
    # True for the admin "test" call: use the vendor's validation/test mode.
    test_mode: bool = False
    urls: Mapping[str, str] = field(default_factory=dict)

    def url(self, default: str, name: str | None = None) -> str:
        """`default` with its scheme and host replaced by the operator's override, if any."""
        override = self.urls.get(name) if name else self.base_url
        if not override:
            return default
        from urllib.parse import urlsplit

        parts = urlsplit(default)
        return override.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def build_context(type_: str, overrides: Mapping[str, str], **kwargs: Any) -> BuildContext:
    """A BuildContext for `type_` with the operator's endpoint overrides
    ({"<type>": base URL, "<type>.<name>": another endpoint}) picked out of the full map."""
    from datetime import UTC

    prefix = f"{type_}."
    return BuildContext(
        now=kwargs.pop("now", None) or datetime.now(UTC),
        base_url=overrides.get(type_),
        urls={k[len(prefix) :]: v for k, v in overrides.items() if k.startswith(prefix)},
        **kwargs,
    )


class Destination:
    """Base class; a vendor module subclasses it and exports one instance as `destination`."""

    type: ClassVar[str]
    title: ClassVar[str]
    vendor: ClassVar[str]
    api: ClassVar[str]
    category: ClassVar[str]  # advertising | analytics | custom | warehouse | storage
    docs_url: ClassVar[str]
    api_version: ClassVar[str | None] = None
    Settings: ClassVar[builtins.type[VendorSettings]]
    default_consent: ClassVar[tuple[str, ...]] = ()
    max_batch: ClassVar[int] = 1
    max_batch_bytes: ClassVar[int | None] = None

    # False until the vendor's build/classify exist: the catalog says "planned" and the router
    # does not queue events for it.
    delivers: ClassVar[bool] = False

    def batch_size(self, settings: VendorSettings) -> int:
        """Events per pull for one integration (settings may lower the vendor's maximum)."""
        return self.max_batch

    def batch_wait_seconds(self, settings: VendorSettings) -> float:
        """How long to wait for a batch to fill before sending what there is."""
        return 0.05 if self.max_batch > 1 else 0.0

    def target_urls(self, settings: VendorSettings) -> list[str]:
        """User-supplied URLs to check against the SSRF guard when the config is saved."""
        return []

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        raise NotImplementedError(f"{self.type} delivery is not available yet")

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        """One outcome per entry of `request.event_indices` (or a single one for all)."""
        from eventrelay.destinations.classify import classify_status

        return [classify_status(response)]

    # --- OAuth (vendors whose settings hold a refresh token) ---------------------------------

    # The vendor's token endpoint (operators may redirect it as "<type>.oauth"), and the
    # lifetime assumed when its answer gives none.
    token_url: ClassVar[str | None] = None
    token_lifetime: ClassVar[float] = 3600.0

    def refresh_credentials(self, settings: VendorSettings) -> tuple[str, str, str] | None:
        """(client_id, client_secret, refresh_token) when access tokens come from the OAuth
        refresh-token grant; None when the vendor takes the stored token directly."""
        return None

    def token_request(self, settings: VendorSettings, ctx: BuildContext) -> HttpRequest | None:
        """The request exchanging stored credentials for an access token, or None when the
        vendor takes the stored token directly. The delivery layer sends it, caches the token
        until it expires and refreshes once when the vendor answers 401. Default: the
        refresh-token grant (RFC 6749 section 6) at `token_url`."""
        credentials = self.refresh_credentials(settings)
        if credentials is None or self.token_url is None:
            return None
        from urllib.parse import urlencode

        client_id, client_secret, refresh_token = credentials
        form = urlencode(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": client_id,
                "client_secret": client_secret,
            }
        )
        return HttpRequest(
            "POST",
            ctx.url(self.token_url, "oauth"),
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            form.encode(),
            (),
        )

    def parse_token(self, response: HttpResponse) -> tuple[str, float]:
        """(access token, lifetime in seconds) from the token endpoint's answer (RFC 6749
        section 5.1; `token_lifetime` without an `expires_in`). Raises KeyError, ValueError or
        TypeError when it holds no token."""
        data = orjson.loads(response.body)
        token = data["access_token"]
        if not isinstance(token, str) or not token:
            raise ValueError("no access_token")
        lifetime = data.get("expires_in")
        return token, float(lifetime) if lifetime else self.token_lifetime

    # --- admin "test" --------------------------------------------------------------------------

    def test_build(self, settings: VendorSettings, ctx: BuildContext) -> BuildResult:
        """The cheapest real call proving the credentials and ids work (the vendor's validation
        endpoint or test-event mode). Default: one test event built in test mode."""
        from eventrelay.destinations.common.segment import TEST_EVENT
        from eventrelay.timeutil import iso_millis

        event = {**TEST_EVENT, "timestamp": iso_millis(ctx.now), "receivedAt": iso_millis(ctx.now)}
        return self.build([EventRecord.from_event(event)], settings, ctx)
