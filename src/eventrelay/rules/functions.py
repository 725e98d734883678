"""The functions of rule expressions (FQL's and the mapping's), with their semantics on
missing paths, nulls and other types: a function never raises on event data; a value it cannot
work on gives null."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from eventrelay.rules.paths import MISSING


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def equal(a: Any, b: Any) -> bool:
    """FQL `=`: no coercion (1 is not "1", true is not 1); a missing path equals null."""
    if a is MISSING:
        a = None
    if b is MISSING:
        b = None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    return bool(a == b)


def ordered(a: Any, b: Any) -> bool:
    """Whether `<`, `>`... apply: two numbers or two strings (ISO dates compare as strings)."""
    if is_number(a) and is_number(b):
        return not (isinstance(a, float) and math.isnan(a)) and not (
            isinstance(b, float) and math.isnan(b)
        )
    return isinstance(a, str) and isinstance(b, str)


def contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, str):
        return isinstance(needle, str) and needle in haystack
    if isinstance(haystack, list):
        return any(equal(item, needle) for item in haystack)
    return False


@lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """`*` any run, `?` one character, `\\` escapes; everything else literal."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        else:
            out.append(re.escape(char))
    if escaped:
        out.append(re.escape("\\"))
    return re.compile("".join(out), re.DOTALL)


def glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?\\" else c for c in text)


def match(value: Any, pattern: Any) -> bool:
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    return glob_regex(pattern).fullmatch(value) is not None


def lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else None


def uppercase(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else None


def trim(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else None


def length(value: Any) -> Any:
    return len(value) if isinstance(value, str | list | dict) else None


def typeof(value: Any) -> str:
    if value is MISSING:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "map"


def coalesce(*values: Any) -> Any:
    for value in values:
        if value is not MISSING and value is not None:
            return value
    return None


def to_number(value: Any) -> Any:
    if is_number(value):
        return value
    if isinstance(value, str):
        text = value.strip()
        if "_" in text:  # Python reads 1_000 as a number; JSON and people do not
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def to_string(value: Any) -> Any:
    if value is MISSING or value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def concat(*values: Any) -> str:
    return "".join(s for s in (to_string(v) for v in values) if s is not None)


# name -> (function, minimum arity, maximum arity or None)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "contains": (contains, 2, 2),
    "match": (match, 2, 2),
    "lowercase": (lowercase, 1, 1),
    "uppercase": (uppercase, 1, 1),
    "trim": (trim, 1, 1),
    "length": (length, 1, 1),
    "typeof": (typeof, 1, 1),
    "coalesce": (coalesce, 1, None),
    "to_number": (to_number, 1, 1),
    "to_string": (to_string, 1, 1),
    "concat": (concat, 1, None),
}
