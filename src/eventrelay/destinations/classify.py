"""The default response classifier, shared by every destination.

2xx success; 408, 429 and 5xx retry (honouring Retry-After); 501 drop; 401/403 auth failure;
3xx retry (a redirect is never followed: the target may have moved somewhere unintended);
any other 4xx drop with reason `http_<status>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

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


def json_body(response: HttpResponse) -> Any:
    """The response body as JSON, or None when it is not JSON."""
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return None


def classify_status(
    response: HttpResponse, reason: str | None = None, message: str | None = None
) -> Outcome:
    """The outcome the HTTP status alone decides. `reason` and `message` replace the defaults
    (`http_<status>` and the body text) when the vendor's body says more."""
    status = response.status
    if 200 <= status < 300:
        return Outcome(OutcomeKind.SUCCESS)
    reason = reason or f"http_{status}"
    message = message or body_text(response)
    if status in (401, 403):
        return Outcome(OutcomeKind.AUTH, reason, message)
    if status == 408 or status == 429 or (status >= 500 and status != 501) or 300 <= status < 400:
        return Outcome(OutcomeKind.RETRY, reason, message, retry_after_seconds(response.headers))
    return Outcome(OutcomeKind.DROP, reason, message)


def refused(count: int, reason: str, message: str | None) -> Outcome:
    """A request refused for something in its events without naming which: a batch is split
    (the worker bisects it to find the bad event), a lone event is dropped."""
    return Outcome(OutcomeKind.SPLIT if count > 1 else OutcomeKind.DROP, reason, message)
