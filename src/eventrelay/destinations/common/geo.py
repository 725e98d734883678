"""Where an event's user is: the countries an event names, and the regions Google Ads excludes
from IP address matching.

Sources of a country, in order: `context.location.country` (Segment's context), the user's
address country (properties, traits, context.traits, also inside an `address` object), and the
region of `context.locale` ("de-DE" -> DE). Each is read as an ISO 3166-1 code, name or "UK".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from eventrelay.destinations.common.normalize import country_code
from eventrelay.destinations.common.paths import text, user_paths

# EU member states, the other EEA countries (Iceland, Liechtenstein, Norway), the United
# Kingdom and Switzerland: Google Ads "does not support IP address matching for end users in the
# European Economic Area (EEA), United Kingdom (UK), or Switzerland (CH)" (ClickConversion
# user_ip_address, https://developers.google.com/google-ads/api/diff-tool/v20/versus-v19/diffs/services/conversion_upload_service).
EEA_UK_CH = frozenset(
    {
        "at",
        "be",
        "bg",
        "hr",
        "cy",
        "cz",
        "dk",
        "ee",
        "fi",
        "fr",
        "de",
        "gr",
        "hu",
        "ie",
        "it",
        "lv",
        "lt",
        "lu",
        "mt",
        "nl",
        "pl",
        "pt",
        "ro",
        "sk",
        "si",
        "es",
        "se",
        "is",
        "li",
        "no",
        "gb",
        "ch",
    }
)

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z]{4})?[-_]([A-Za-z]{2})\b")


def locale_region(event: Mapping[str, Any]) -> str | None:
    """The region of context.locale ("en-US", "de_DE", "zh-Hant-TW"), lower-case ISO-2."""
    locale = text(event, "context.locale")
    match = _LOCALE.match(locale) if locale else None
    return country_code(match.group(1)) if match else None


def countries(event: Mapping[str, Any]) -> list[str]:
    """Every country the event names (lower-case ISO-2, most specific first, no repeats)."""
    found = [
        text(event, "context.location.country"),
        text(event, *user_paths("country", "country_code")),
        text(event, *user_paths("address.country", "address.country_code")),
    ]
    codes = [country_code(value) for value in found if value]
    codes.append(locale_region(event))
    return list(dict.fromkeys(code for code in codes if code))


def regions(default_country: str | None, event: Mapping[str, Any]) -> list[str]:
    """Regions to read a phone number without country code in, upper-case: the integration's
    default_country first, then the event's countries."""
    found = [default_country.lower()] if default_country else []
    return [code.upper() for code in dict.fromkeys([*found, *countries(event)])]
