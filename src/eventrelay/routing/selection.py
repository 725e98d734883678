"""Segment's per-event `integrations` object: which integrations an event may reach.

Segment's rule (https://segment.com/docs/guides/filtering-data/, "Filtering with the
Integrations object"; https://segment.com/docs/connections/spec/common/#integrations): `All`
defaults to true; a key naming a destination overrides `All` for it: `false` turns it off,
`true` (or an object of destination options) turns it on. Segment matches keys case-sensitively
against the destination's catalog name.

eventrelay matches a key against, most specific first:
1. the integration's own `name`, exactly (case-sensitive, as Segment);
2. its `type` (`webhook`, `ga4`, ...) or the Segment catalog names of that kind of destination
   that Segment users already write ("Google Analytics 4", "Facebook Conversions API",
   "Webhooks", ...), case-insensitively: these are fixed words, not names the user chose;
3. `All` (any case), default true.
Only a JSON `false` turns an integration off; `true`, an object or any other value leaves it on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Segment catalog names (https://segment.com/docs/connections/destinations/catalog/) and common
# variants, per eventrelay type. Lower-cased for matching.
SEGMENT_NAMES: dict[str, tuple[str, ...]] = {
    "ga4": (
        "Google Analytics 4",
        "Google Analytics 4 Cloud",
        "Google Analytics 4 Web",
        "GA4",
    ),
    "meta_capi": (
        "Facebook Conversions API",
        "Facebook Conversions API (Actions)",
        "Meta Conversions API",
    ),
    "google_ads": (
        "Google Ads Conversions",
        "Google Ads (Gtag)",
        "Google AdWords New",
        "Google Enhanced Conversions",
    ),
    "tiktok": ("TikTok Conversions", "TikTok Events API"),
    "pinterest": ("Pinterest Conversions API",),
    "snapchat": ("Snap Conversions API", "Snapchat Conversions API", "Snapchat Conversions"),
    "linkedin": ("LinkedIn Conversions API",),
    "the_trade_desk": ("The Trade Desk", "The Trade Desk CRM"),
    "webhook": ("Webhooks", "Webhooks (Actions)", "Webhook"),
    "bigquery": ("BigQuery", "Google BigQuery"),
    "snowflake": ("Snowflake",),
    "s3": ("Amazon S3", "AWS S3"),
    "gcs": ("Google Cloud Storage",),
    "redshift": ("Redshift", "Amazon Redshift"),
}


def type_keys(type_: str, title: str | None = None) -> tuple[str, ...]:
    """The lower-cased keys that address every integration of a type, in precedence order."""
    names: Iterable[str] = (type_, *SEGMENT_NAMES.get(type_, ()), *((title,) if title else ()))
    return tuple(dict.fromkeys(name.lower() for name in names))


class Selection:
    """One event's `integrations` object, prepared for matching against many integrations."""

    __slots__ = ("_all", "_exact", "_folded")

    def __init__(self, integrations: Mapping[str, Any]) -> None:
        self._exact: Mapping[str, object] = integrations
        self._folded: dict[str, object] = {
            str(key).lower(): value for key, value in integrations.items()
        }
        self._all: bool = self._folded.get("all", True) is not False

    def allows(self, name: str, keys: tuple[str, ...]) -> bool:
        value = self._exact.get(name, self)
        if value is not self:
            return value is not False
        for key in keys:
            value = self._folded.get(key, self)
            if value is not self:
                return value is not False
        return self._all


def selection_of(event: Mapping[str, Any]) -> Selection | None:
    """None when the event lets every integration through (no object, `{}`, `{"All": true}`):
    the common case costs one lookup."""
    integrations = event.get("integrations")
    if not integrations:
        return None
    if len(integrations) == 1 and integrations.get("All") is True:
        return None
    return Selection(integrations)
