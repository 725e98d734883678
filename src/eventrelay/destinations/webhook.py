"""Custom webhook: events as JSON to a configurable HTTP endpoint."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from eventrelay import __version__
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
from eventrelay.destinations.classify import body_text, classify_status
from eventrelay.destinations.fields import ENDPOINT, HttpUrl, Secret

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
# Headers eventrelay owns: framing, content type and the Standard Webhooks signature.
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)


def decode_signing_secret(value: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret `whsec_<base64>`."""
    raw = value.removeprefix("whsec_")
    return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)


class WebhookSettings(VendorSettings):
    url: Annotated[
        HttpUrl,
        Field(description="Absolute http(s) URL events are sent to.", json_schema_extra=ENDPOINT),
    ]
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: Annotated[
        dict[str, SecretStr],
        Field(max_length=50, description="Extra request headers; values are stored as secrets."),
    ] = {}
    batch: Annotated[bool, Field(description="Send a JSON array of events per request.")] = False
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 100
    batch_interval_ms: Annotated[
        int, Field(ge=10, le=60_000, description="Flush a partial batch after this long.")
    ] = 5000
    signing_secret: Annotated[
        Secret | None,
        Field(description="Standard Webhooks secret (whsec_<base64>) to sign every request."),
    ] = None

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by eventrelay and cannot be configured")
            text = secret.get_secret_value()
            if "\r" in text or "\n" in text or len(text) > 8192:
                raise ValueError(f"header {name!r} has a value with line breaks or over 8 KB")
        return value

    @field_validator("signing_secret")
    @classmethod
    def _check_signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "***":
            return value
        try:
            key = decode_signing_secret(value.get_secret_value())
        except (binascii.Error, ValueError) as exc:
            raise ValueError("must be whsec_ followed by base64") from exc
        if not 24 <= len(key) <= 64:
            raise ValueError("must encode 24 to 64 random bytes")
        return value


def webhook_id(message_ids: Sequence[str]) -> str:
    """Stable across retries of the same event(s): the receiver's idempotency key.

    Derived, not the raw messageId: Standard Webhooks ids must not carry user-chosen text."""
    digest = hashlib.sha256("\n".join(message_ids).encode()).hexdigest()
    return f"msg_{digest[:40]}"


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks v1: base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Webhook(Destination):
    type = "webhook"
    title = "Custom Webhook"
    vendor = "Custom Webhook"
    api = "Configurable HTTP endpoint"
    category = "custom"
    docs_url = "https://www.standardwebhooks.com/"
    Settings = WebhookSettings
    default_consent = ()
    max_batch = 1000
    delivers = True
    # Events per pull when not batching: sent one request each, concurrently.
    unbatched_pull = 64

    def target_urls(self, settings: VendorSettings) -> list[str]:
        assert isinstance(settings, WebhookSettings)
        return [settings.url]

    def batch_size(self, settings: VendorSettings) -> int:
        assert isinstance(settings, WebhookSettings)
        return settings.batch_size if settings.batch else self.unbatched_pull

    def batch_wait_seconds(self, settings: VendorSettings) -> float:
        assert isinstance(settings, WebhookSettings)
        return settings.batch_interval_ms / 1000 if settings.batch else 0.0

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        assert isinstance(settings, WebhookSettings)
        base_headers = {
            "Content-Type": "application/json",
            "User-Agent": f"eventrelay/{__version__}",
            **{name: value.get_secret_value() for name, value in settings.headers.items()},
        }
        key = (
            decode_signing_secret(settings.signing_secret.get_secret_value())
            if settings.signing_secret
            else None
        )
        timestamp = int(ctx.now.timestamp())
        result = BuildResult()
        if settings.batch:
            groups = [
                list(range(start, min(start + settings.batch_size, len(events))))
                for start in range(0, len(events), settings.batch_size)
            ]
        else:
            groups = [[index] for index in range(len(events))]
        for indices in groups:
            if settings.batch:
                body = b"[" + b",".join(events[i].raw for i in indices) + b"]"
            else:
                body = events[indices[0]].raw
            msg_id = webhook_id([events[i].message_id for i in indices])
            headers = dict(base_headers)
            headers["webhook-id"] = msg_id
            if key is not None:
                headers["webhook-timestamp"] = str(timestamp)
                headers["webhook-signature"] = sign(key, msg_id, timestamp, body)
            result.requests.append(
                HttpRequest(
                    settings.method,
                    settings.url,
                    headers,
                    body,
                    tuple(indices),
                    user_target=True,
                )
            )
        return result

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        if response.status == 410:
            # Standard Webhooks: 410 Gone means the receiver wants no more deliveries.
            return [Outcome(OutcomeKind.DISABLE, "http_410", body_text(response))]
        return [classify_status(response)]


destination = Webhook()
