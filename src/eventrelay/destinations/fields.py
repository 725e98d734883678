"""Reusable Settings field types with the formats vendors define."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

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
