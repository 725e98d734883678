"""Errors a request ends with, raised by the control plane and the API alike. The API layer
renders them as {"error": {"code", "message", "details"?}}; never with a stack trace or secret."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details) if details else None
        self.headers = dict(headers or {})


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422, "validation_error", f"{field}: {message}", [{"field": field, "message": message}]
    )


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
}


def message_for(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind in ("string_too_short", "too_short") and error.get("ctx", {}).get("min_length") != 1:
        return error["msg"]
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    msg = error["msg"]
    # pydantic prefixes errors raised by our validators with "Value error, ".
    return msg.removeprefix("Value error, ")


def validation_details(
    errors: Iterable[ErrorDetails], prefix: str = "", strip: int = 0
) -> list[dict[str, str]]:
    """pydantic errors -> [{field, message}]; never echoes the rejected input (it may be secret)."""
    details = []
    for error in errors:
        loc = [str(part) for part in error["loc"][strip:]]
        field = ".".join(([prefix] if prefix else []) + loc) or prefix or "body"
        details.append({"field": field, "message": message_for(error)})
    return details


def validation_error(details: list[dict[str, Any]]) -> ApiError:
    first = details[0]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return ApiError(422, "validation_error", f"{first['field']}: {first['message']}{more}", details)


def from_pydantic(exc: ValidationError, prefix: str) -> ApiError:
    return validation_error(validation_details(exc.errors(), prefix))
