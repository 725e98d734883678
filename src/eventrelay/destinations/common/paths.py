"""Read values from an event by dotted path, with fallbacks.

`first(event, "properties.email", "context.traits.email", "traits.email")` returns the first
path that holds a non-empty value. Empty strings and None count as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def get(event: Mapping[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is _MISSING:
            return None
    return node


def present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def first(event: Mapping[str, Any], *paths: str) -> Any:
    for path in paths:
        value = get(event, path)
        if present(value):
            return value
    return None


def text(event: Mapping[str, Any], *paths: str) -> str | None:
    """The first value found, as a stripped string (numbers are converted)."""
    value = first(event, *paths)
    if value is None or isinstance(value, dict | list | bool):
        return None
    result = str(value).strip()
    return result or None


def number(event: Mapping[str, Any], *paths: str) -> float | None:
    value = first(event, *paths)
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result and abs(result) != float("inf") else None


# Where user data lives in a Segment event, most specific first.
def user_paths(*names: str) -> tuple[str, ...]:
    """properties.<n>, traits.<n>, context.traits.<n> for each name."""
    return tuple(
        f"{prefix}.{name}"
        for name in names
        for prefix in ("properties", "traits", "context.traits")
    )
