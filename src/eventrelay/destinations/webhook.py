"""Custom webhook: events as JSON to a configurable HTTP endpoint."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

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

# RFC 9110: a field name is a token, 1*tchar (sections 5.1, 5.6.2); a field value is visible
# characters, SP and HTAB (and obs-text), and other control characters make it invalid: no CR,
# LF, NUL, VT, FF or DEL (https://www.rfc-editor.org/rfc/rfc9110#section-5.5). fullmatch:
# `$` would let a name end in "\n".
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
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
        """Every header the HTTP client would refuse at send time is refused here, each error
        at `headers.<name>` (the value is a secret: never echoed)."""
        errors: list[InitErrorDetails] = []

        def refuse(name: str, message: str) -> None:
            error = PydanticCustomError("value_error", message)
            errors.append(InitErrorDetails(type=error, loc=(name,), input=name))

        for name, secret in value.items():
            text = secret.get_secret_value()
            if not _HEADER_NAME.fullmatch(name):
                refuse(name, "not a valid header name: letters, digits and !#$%&'*+-.^_`|~ only")
            elif name.lower() in _RESERVED_HEADERS:
                refuse(name, "this header is set by eventrelay and cannot be configured")
            elif _HEADER_VALUE_FORBIDDEN.search(text):
                refuse(name, "the value has a control character (only tab is allowed)")
            elif len(text) > 8192:
                refuse(name, "the value is over 8 KB")
        if errors:
            raise ValidationError.from_exception_data("headers", errors)
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
