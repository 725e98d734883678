"""The default response classifier, shared by every destination.

2xx success; 408, 429 and 5xx retry (honouring Retry-After); 501 drop; 401/403 auth failure;
3xx retry (a redirect is never followed: the target may have moved somewhere unintended);
any other 4xx drop with reason `http_<status>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from eventrelay.destinations.base import HttpResponse, Outcome, OutcomeKind
from eventrelay.timeutil import utcnow

MAX_MESSAGE = 2000


def header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unparseable."""
    value = header(headers, "retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (when - utcnow()).total_seconds())


def body_text(response: HttpResponse, limit: int = MAX_MESSAGE) -> str:
    text = response.body[:limit].decode("utf-8", errors="replace").strip()
    return text or f"HTTP {response.status}"


def classify_status(response: HttpResponse) -> Outcome:
    status = response.status
    if 200 <= status < 300:
        return Outcome(OutcomeKind.SUCCESS)
    message = body_text(response)
    if status in (401, 403):
        return Outcome(OutcomeKind.AUTH, f"http_{status}", message)
    if status == 408 or status == 429 or (status >= 500 and status != 501) or 300 <= status < 400:
        return Outcome(
            OutcomeKind.RETRY, f"http_{status}", message, retry_after_seconds(response.headers)
        )
    return Outcome(OutcomeKind.DROP, f"http_{status}", message)
