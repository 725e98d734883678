"""Pieces every control operation uses."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from eventrelay.errors import ApiError


def _strip_nonblank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_strip_nonblank)]


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {old, new}} for the fields whose value changed."""
    return {
        key: {"old": old.get(key), "new": new.get(key)}
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    }
