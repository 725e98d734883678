"""How the BigQuery and Snowflake loaders read their warehouse's answers (no stand-in needed):
error classification, rows named by a failed load, and the encodings rows are sent in."""

from __future__ import annotations

import json

import pytest
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from hypothesis import given
from hypothesis import strategies as st
from snowflake.connector import errors as sf_errors

from eventrelay.destinations.base import OutcomeKind
from eventrelay.loaders import bigquery_sql, snowflake_sql
from eventrelay.loaders.bigquery import _insert_errors
from eventrelay.loaders.bigquery_errors import classify, load_error


def _google(cls: type[api_exceptions.GoogleAPICallError], reason: str, message: str) -> Exception:
    return cls(message, errors=[{"reason": reason, "message": message}])


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        (
            _google(api_exceptions.Forbidden, "quotaExceeded", "Quota exceeded"),
            OutcomeKind.RETRY,
            "bigquery_quotaExceeded",
        ),
        (
            _google(api_exceptions.Forbidden, "rateLimitExceeded", "Exceeded rate limits"),
            OutcomeKind.RETRY,
            "bigquery_rateLimitExceeded",
        ),
        (
            _google(api_exceptions.ServiceUnavailable, "backendError", "Try again"),
            OutcomeKind.RETRY,
            "bigquery_backendError",
        ),
        (
            _google(api_exceptions.TooManyRequests, "", "Slow down"),
            OutcomeKind.RETRY,
            "bigquery_429",
        ),
        (
            _google(api_exceptions.Forbidden, "accessDenied", "Access Denied: Table p:d.t"),
            OutcomeKind.AUTH,
            "bigquery_accessDenied",
        ),
        (
            _google(api_exceptions.Forbidden, "billingNotEnabled", "Billing has not been enabled"),
            OutcomeKind.AUTH,
            "bigquery_billingNotEnabled",
        ),
        (
            _google(api_exceptions.NotFound, "notFound", "Not found: Dataset p:d"),
            OutcomeKind.AUTH,
            "bigquery_notFound",
        ),
        (
            _google(
                api_exceptions.BadRequest,
                "invalidQuery",
                "Transaction is aborted due to concurrent update",
            ),
            OutcomeKind.RETRY,
            "bigquery_concurrent_update",
        ),
    ],
)
def test_bigquery_errors_are_classified_by_reason_not_status(
    error: Exception, kind: OutcomeKind, reason: str
) -> None:
    out = classify(error, "load")
    assert (out.kind, out.reason) == (kind, reason)
    assert out.message.startswith("load: ") and "POST" not in out.message


def test_a_refused_service_account_is_an_auth_error_with_googles_words() -> None:
    refused = auth_exceptions.RefreshError("invalid_grant: Invalid JWT Signature.", {})
    out = classify(refused, "load")
    assert (
        out.kind is OutcomeKind.AUTH
        and out.message == "load: invalid_grant: Invalid JWT Signature."
    )


def test_a_load_job_error_names_the_row_by_byte_position_or_line() -> None:
    body = b'{"a":1}\n{"a":"x"}\n{"a":3}\n'
    position = [
        {"reason": "invalid", "message": "JSON parsing error in row starting at position 8: bad"}
    ]
    out = load_error(position, body, ["m1", "m2", "m3"], "load job")
    assert out.kind is OutcomeKind.DROP and list(out.rows) == ["m2"]
    assert "position 8" in out.rows["m2"]
    line = [{"reason": "invalid", "message": "Invalid Input Error: in line 3: cannot cast"}]
    assert list(load_error(line, body, ["m1", "m2", "m3"], "x").rows) == ["m3"]
    unnamed = [{"reason": "invalid", "message": "Too many errors"}]
    assert load_error(unnamed, body, ["m1", "m2", "m3"], "x").kind is OutcomeKind.SPLIT


def test_insert_all_errors_drop_invalid_rows_and_keep_stopped_ones() -> None:
    errors = [
        {"index": 0, "errors": [{"reason": "stopped", "message": ""}]},
        {"index": 1, "errors": [{"reason": "invalid", "message": "no such field: zz."}]},
    ]
    out = _insert_errors(errors, ["m1", "m2"])
    assert out.kind is OutcomeKind.DROP and out.rows == {"m2": "invalid: no such field: zz."}
    stopped_only = _insert_errors(errors[:1], ["m1"])
    assert stopped_only.kind is OutcomeKind.RETRY


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integers_beyond_2_53_travel_as_strings(value: int) -> None:
    row = {"n": value, "p": {"n": value}}
    streamed = bigquery_sql.stream_row(row, frozenset({"p"}))
    loaded = bigquery_sql.load_row(row)
    safe = abs(value) <= 2**53 - 1
    assert streamed["n"] == loaded["n"] == (value if safe else str(value))
    assert json.loads(streamed["p"]) == {"n": value}  # JSON columns go as JSON text


def test_merge_bounds_cover_the_days_of_the_batch_with_a_day_either_side() -> None:
    rows = [{"timestamp": "2026-12-01T10:00:00.000Z"}, {"timestamp": "2026-12-03T23:59:00.000Z"}]
    bounds = bigquery_sql.day_bounds(rows)
    assert bounds == (
        " AND T.`timestamp` >= TIMESTAMP '2026-11-30 00:00:00+00'"
        " AND T.`timestamp` < TIMESTAMP '2026-12-05 00:00:00+00'"
    )
    assert bigquery_sql.day_bounds([{"timestamp": None}]) is None


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (sf_errors.DatabaseError(msg="JWT token is invalid.", errno=390144), OutcomeKind.AUTH),
        (
            sf_errors.DatabaseError(msg="Incorrect username or password", errno=390100),
            OutcomeKind.AUTH,
        ),
        (sf_errors.DatabaseError(msg="Session expired", errno=390112), OutcomeKind.RETRY),
        (
            sf_errors.ProgrammingError(
                msg="Insufficient privileges to operate on table", errno=3001
            ),
            OutcomeKind.AUTH,
        ),
        (
            sf_errors.ProgrammingError(
                msg="Database 'X' does not exist or not authorized.", errno=2003
            ),
            OutcomeKind.AUTH,
        ),
        (
            sf_errors.ProgrammingError(
                msg="Object 'X.P.EVENTS' does not exist or not authorized.", errno=2003
            ),
            OutcomeKind.RETRY,
        ),
        (
            sf_errors.ProgrammingError(
                msg="Statement reached its statement or warehouse timeout", errno=625
            ),
            OutcomeKind.RETRY,
        ),
        (
            sf_errors.OperationalError(msg="HTTP 503: Service Unavailable", errno=290503),
            OutcomeKind.RETRY,
        ),
        (
            sf_errors.ProgrammingError(
                msg="No active warehouse selected in the current session.", errno=606
            ),
            OutcomeKind.AUTH,
        ),
    ],
)
def test_snowflake_errors_are_classified_by_code(error: Exception, kind: OutcomeKind) -> None:
    out = snowflake_sql.classify(error, "load")
    assert out.kind is kind
    assert out.message.startswith("load: ")


def test_a_copy_result_names_the_failed_line() -> None:
    ok = [("f.json.gz", "LOADED", 2, 2, 1, 0, None, None, None, None)]
    assert snowflake_sql.copy_errors(ok, ["m1", "m2"]) is None
    bad = [("f.json.gz", "LOAD_FAILED", 2, 0, 1, 1, "Error parsing JSON", 2, 5, None)]
    out = snowflake_sql.copy_errors(bad, ["m1", "m2"])
    assert (
        out is not None
        and out.kind is OutcomeKind.DROP
        and out.rows == {"m2": "Error parsing JSON"}
    )


@given(st.from_regex(r"[a-z_][a-z0-9_]{0,40}", fullmatch=True))
def test_snowflake_names_are_quoted_in_upper_case(identifier: str) -> None:
    quoted = snowflake_sql.name(identifier)
    assert quoted == f'"{identifier.upper()}"'
