"""Custom webhook: events as JSON to a configurable HTTP endpoint."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.destinations.fields import HttpUrl, Secret

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
    url: Annotated[HttpUrl, Field(description="Absolute http(s) URL events are sent to.")]
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

    def target_urls(self, settings: VendorSettings) -> list[str]:
        assert isinstance(settings, WebhookSettings)
        return [settings.url]


destination = Webhook()
