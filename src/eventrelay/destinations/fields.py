"""Reusable Settings field types with the formats vendors define."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any
from urllib.parse import urlsplit

import pycountry
from pydantic import AfterValidator, Field, SecretStr

# A secret value: encrypted at rest, "***" in responses, never logged.
Secret = Annotated[SecretStr, Field(min_length=1)]

# Marks a field that decides where requests, and the credentials they carry, are sent (a URL, a
# host, an account or bucket that names the host). Changing one makes the stored secrets unusable
# until they are given again (control/integrations.py): an editor cannot redirect the owner's
# credentials to a server of their own. Shown as "x-endpoint": true in the config schema.
ENDPOINT: dict[str, Any] = {"x-endpoint": True}

NonEmpty = Annotated[str, Field(min_length=1, max_length=1024)]
Digits = Annotated[str, Field(pattern=r"^\d{1,32}$", description="Digits only.")]
Port = Annotated[int, Field(ge=1, le=65535)]
SqlIdentifier = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$",
        description="Unquoted identifier: letters, digits, _ and $; not starting with a digit.",
    ),
]

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def _check_hostname(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOSTNAME.match(value):
        raise ValueError("must be a host name or IP address")
    return value


Hostname = Annotated[str, AfterValidator(_check_hostname)]


def _check_bucket(value: str) -> str:
    # S3 bucket naming rules (general purpose buckets).
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value):
        raise ValueError("must be 3-63 lowercase letters, digits, dots or hyphens")
    if ".." in value or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value):
        raise ValueError("must not contain '..' or look like an IP address")
    return value


S3Bucket = Annotated[str, AfterValidator(_check_bucket)]

AwsRegion = Annotated[
    str,
    Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$", description="e.g. us-east-1"),
]


def _check_http_url(value: str) -> str:
    if len(value) > 2048:
        raise ValueError("must be at most 2048 characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an absolute http(s) URL")
    if not parts.hostname:
        raise ValueError("must include a host")
    if parts.username or parts.password:
        raise ValueError("must not embed credentials; use headers instead")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    return value


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]

EventMapping = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=200)],
        Annotated[str, Field(min_length=1, max_length=100)],
    ],
    Field(
        max_length=500,
        description="Segment event name -> vendor event name; overrides the default mapping.",
    ),
]


# The parts of an event_mapping, for vendors that check the mapped names one by one (so a
# refusal names the field config.event_mapping.<Segment event>):
# `Annotated[dict[MappingKey, <checked name>], MAPPING]`.
MappingKey = Annotated[str, Field(min_length=1, max_length=200)]
MAPPING = Field(
    max_length=500,
    description="Segment event name -> vendor event name; overrides the default mapping.",
)


def one_of(names: Iterable[str]) -> Callable[[str], str]:
    """A validator for a vendor's closed list of event names; the error lists them all."""
    allowed = sorted(set(names))

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"not a documented event name; use one of: {', '.join(allowed)}")
        return value

    return check


def name_field(names: Iterable[str] | None = None) -> Any:
    """Field() of a mapped event name: its length, and the closed list as a JSON Schema enum."""
    extra: dict[str, Any] | None = {"enum": sorted(set(names))} if names is not None else None
    return Field(min_length=1, max_length=100, json_schema_extra=extra)


def _check_country(value: str) -> str:
    country = pycountry.countries.get(alpha_2=value.upper())
    if country is None:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, e.g. US")
    return str(country.alpha_2)


def _check_currency(value: str) -> str:
    if pycountry.currencies.get(alpha_3=value.upper()) is None:
        raise ValueError("must be an ISO 4217 currency code, e.g. EUR")
    return value.upper()


DefaultCountry = Annotated[
    str | None,
    Field(
        min_length=2,
        max_length=2,
        description="ISO 3166-1 alpha-2 country for phone numbers written without a country "
        "code (else the event's country or locale region is used; without any, such a number "
        "is left out).",
    ),
    AfterValidator(lambda v: _check_country(v) if v is not None else None),
]
DefaultCurrency = Annotated[
    str | None,
    Field(
        min_length=3,
        max_length=3,
        description="ISO 4217 currency of events that carry a value but no currency (without "
        "it such a value is left out rather than reported in a guessed currency).",
    ),
    AfterValidator(lambda v: _check_currency(v) if v is not None else None),
]
