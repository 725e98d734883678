"""Google Ads: reading a GoogleAdsFailure (partial failures and request-level errors) into
per-row outcomes. Facts: ../shared/reference/vendors-ads.md section 3.6 (partial-failures
guide: errors name their row by `location.fieldPathElements[{fieldName: conversions, index}]`;
TRANSIENT_ERROR and TOO_RECENT_* may succeed later).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventrelay.destinations.base import Outcome, OutcomeKind

# Error categories of GoogleAdsFailure.errors[].errorCode.
AUTH_CATEGORIES = frozenset({"authenticationError", "authorizationError"})
TRANSIENT_CODES = frozenset({"TRANSIENT_ERROR", "RESOURCE_EXHAUSTED"})
# "TOO_RECENT_* may succeed later" (reference 3.6): retried, at the retry policy's longest wait.
TOO_RECENT_RETRY_SECONDS = 600.0


def errors(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """GoogleAdsFailure errors inside a google.rpc.Status's details."""
    out: list[dict[str, Any]] = []
    details = status.get("details")
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and isinstance(detail.get("errors"), list):
            out.extend(e for e in detail["errors"] if isinstance(e, dict))
    return out


def error_code(error: Mapping[str, Any]) -> tuple[str, str]:
    """(category, code) of an error, e.g. ("conversionUploadError", "INVALID_GCLID")."""
    code = error.get("errorCode")
    if isinstance(code, dict):
        for category, value in code.items():
            return str(category), str(value)
    return "", "unknown_error"


def row_index(error: Mapping[str, Any]) -> int | None:
    """The conversion an error is about: location.fieldPathElements[{fieldName: conversions,
    index}]."""
    location = error.get("location")
    elements = location.get("fieldPathElements") if isinstance(location, dict) else None
    for element in elements if isinstance(elements, list) else []:
        if isinstance(element, dict) and element.get("fieldName") == "conversions":
            index = element.get("index")
            return index if isinstance(index, int) and not isinstance(index, bool) else None
    return None


def row_outcome(error: Mapping[str, Any]) -> Outcome:
    category, code = error_code(error)
    message = str(error.get("message") or code)
    if code in TRANSIENT_CODES:
        return Outcome(OutcomeKind.RETRY, code, message)
    if code.startswith("TOO_RECENT_"):
        return Outcome(OutcomeKind.RETRY, code, message, TOO_RECENT_RETRY_SECONDS)
    if category in AUTH_CATEGORIES:
        return Outcome(OutcomeKind.AUTH, code, message)
    return Outcome(OutcomeKind.DROP, code, message)


def worst(outcomes: list[Outcome]) -> Outcome:
    """A row with several errors: a permanent one wins (retrying cannot fix the row)."""
    for kind in (OutcomeKind.DROP, OutcomeKind.AUTH, OutcomeKind.RETRY):
        for outcome in outcomes:
            if outcome.kind is kind:
                return outcome
    return outcomes[0]


def row_failed(results: Any, row: int) -> bool:
    """results[] is aligned with the request; a failed row's entry is empty."""
    if not isinstance(results, list) or row >= len(results):
        return True
    return not results[row]
