"""BigQuery's errors, classified for the loader contract.

BigQuery answers with an HTTP status and `errors[]` of ErrorProto objects whose `reason` says
what happened (cloud.google.com/bigquery/docs/error-messages): quota and rate limits come as
403 `quotaExceeded` / `rateLimitExceeded`, so the reason decides, not the status. Retried:
`backendError`, `internalError`, `badGateway`, `rateLimitExceeded`, `quotaExceeded`,
`jobRateLimitExceeded`, `jobBackendError`, `jobInternalError`, `tableUnavailable`, `timeout`,
any 5xx and 429 (the reasons google-cloud-bigquery's own retry.py retries, plus the quota ones:
they lift with time). Refused credentials (the token endpoint's `invalid_grant`), `accessDenied`,
`billingNotEnabled`, a missing dataset: the integration goes to error with BigQuery's message.
A load job's `errors[]` name the line of the file that failed ("... row starting at position
N", "line N"): those rows are dropped with BigQuery's reason, the rest reloaded.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from requests import exceptions as requests_exceptions

from eventrelay.destinations.base import OutcomeKind
from eventrelay.loaders.base import LoadError

RETRY_REASONS = frozenset(
    {
        "backendError",
        "internalError",
        "badGateway",
        "rateLimitExceeded",
        "quotaExceeded",
        "jobRateLimitExceeded",
        "jobBackendError",
        "jobInternalError",
        "tableUnavailable",
        "timeout",
    }
)
# Another transaction changed a table this one touches: run it again.
CONCURRENT = re.compile(r"concurrent update|could not serialize", re.IGNORECASE)
# "JSON parsing error in row starting at position 1234: ..." / "... in line 3: ..."
POSITION = re.compile(r"row starting at position (\d+)")
LINE = re.compile(r"\bline (\d+)\b")


def reasons(exc: api_exceptions.GoogleAPICallError) -> list[str]:
    return [str(e.get("reason", "")) for e in (exc.errors or []) if isinstance(e, dict)]


def message_of(exc: api_exceptions.GoogleAPICallError) -> str:
    """BigQuery's own message (the first error's), without the client's request line."""
    for error in exc.errors or []:
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc.message)


def classify(exc: BaseException, what: str, committed: bool | None = False) -> LoadError:
    """A LoadError for an exception of the BigQuery client; `what` names the step."""
    if isinstance(exc, LoadError):
        return exc
    if isinstance(exc, auth_exceptions.RefreshError):
        # The token endpoint refused the service account (invalid_grant: Invalid JWT
        # Signature., account deleted or disabled...).
        return LoadError(OutcomeKind.AUTH, "bigquery_credentials", f"{what}: {exc.args[0]}")
    if isinstance(exc, auth_exceptions.TransportError):
        return LoadError(
            OutcomeKind.RETRY, "bigquery_unreachable", f"{what}: {exc}", committed=False
        )
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return _api_error(exc, what, committed)
    if isinstance(exc, requests_exceptions.Timeout | TimeoutError):
        # The request may have been carried out: whether it was is asked before a reload.
        return LoadError(
            OutcomeKind.RETRY, "bigquery_timeout", f"{what}: timed out", committed=None
        )
    if isinstance(exc, requests_exceptions.RequestException | ConnectionError):
        return LoadError(
            OutcomeKind.RETRY,
            "bigquery_unreachable",
            f"{what}: {type(exc).__name__}",
            committed=None,
        )
    raise exc


def _api_error(
    exc: api_exceptions.GoogleAPICallError, what: str, committed: bool | None
) -> LoadError:
    status = int(exc.code or 0)
    found = reasons(exc)
    text = message_of(exc)
    reason = next((r for r in found if r), str(status))
    message = f"{what}: {text}"
    if status >= 500 or status == 429 or any(r in RETRY_REASONS for r in found):
        return LoadError(OutcomeKind.RETRY, f"bigquery_{reason}", message, committed=committed)
    if CONCURRENT.search(text):
        return LoadError(OutcomeKind.RETRY, "bigquery_concurrent_update", message, committed=False)
    # Credentials, permissions, billing, a missing dataset, an invalid request of ours: none of
    # them passes with time; the integration waits in error with BigQuery's words.
    return LoadError(OutcomeKind.AUTH, f"bigquery_{reason}", message, committed=committed)


def load_error(
    errors: Sequence[dict[str, Any]], body: bytes, message_ids: Sequence[str], what: str
) -> LoadError:
    """A failed load job: DROP the rows its errors point at (by byte position or line of the
    NDJSON file), with BigQuery's message; SPLIT (bisect) when no row is named."""
    starts = [0]
    for index, byte in enumerate(body):
        if byte == 0x0A:
            starts.append(index + 1)
    rows: dict[str, str] = {}
    for error in errors:
        text = str(error.get("message", ""))
        line: int | None = None
        if match := POSITION.search(text):
            line = bisect.bisect_right(starts, int(match[1])) - 1
        elif match := LINE.search(text):
            line = int(match[1]) - 1
        if line is not None and 0 <= line < len(message_ids):
            rows.setdefault(message_ids[line], f"{error.get('reason', 'invalid')}: {text}")
    first = str(errors[0].get("message", "")) if errors else "load job failed"
    if rows:
        return LoadError(
            OutcomeKind.DROP, "bigquery_invalid_row", f"{what}: {first}", rows=rows, committed=False
        )
    return LoadError(OutcomeKind.SPLIT, "bigquery_load_failed", f"{what}: {first}", committed=False)
