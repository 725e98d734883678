"""Consent: which integrations an event may reach (Segment consent spec).

An event carries `context.consent.categoryPreferences` ({"Advertising": true, ...}). An
integration requires all of its categories to be granted. Category names match
case-insensitively. An event without consent information follows the source's
`consent_default`: "deny" grants nothing (only integrations requiring no category receive it),
"allow" grants everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_CATEGORIES: tuple[str, ...] = (
    "analytics",
    "advertising",
    "marketing",
    "functional",
    "personalization",
)
CONSENT_DEFAULTS = ("deny", "allow")


def granted_categories(event: Mapping[str, Any]) -> frozenset[str] | None:
    """Lower-cased granted categories, or None when the event carries no consent information."""
    context = event.get("context")
    if not isinstance(context, Mapping):
        return None
    consent = context.get("consent")
    if not isinstance(consent, Mapping):
        return None
    prefs = consent.get("categoryPreferences")
    if not isinstance(prefs, Mapping):
        return None
    return frozenset(str(name).lower() for name, value in prefs.items() if value is True)


def allows(
    required: Iterable[str], granted: frozenset[str] | None, consent_default: str = "deny"
) -> bool:
    required = tuple(required)
    if not required:
        return True
    if granted is None:
        return consent_default == "allow"
    return all(category.lower() in granted for category in required)
