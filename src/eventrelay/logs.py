"""Logging: one JSON object per line on stderr. Messages never carry secrets: code logs ids and
error types, and every vendor text goes through `redact` first."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

import orjson

from eventrelay.timeutil import iso_millis, utcnow

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": iso_millis(utcnow()),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            # The exception type only: tracebacks and messages can carry secrets.
            entry["error_type"] = type(record.exc_info[1]).__name__
        return orjson.dumps(entry, default=str).decode()


def setup(level: str = "INFO", access_log: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # uvicorn drops access lines itself when asked, except in `serve --processes` children,
    # which configure logging after it.
    logging.getLogger("uvicorn.access").disabled = not access_log


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in vendor text, also in its URL-encoded form (tokens travel in
    query strings)."""
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) >= 4:
            forms.update((secret, quote(secret, safe=""), quote_plus(secret, safe="")))
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text
