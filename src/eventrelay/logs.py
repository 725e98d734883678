"""Logging: one JSON object per line on stderr. Messages never carry secrets: code logs ids and
error types, and every vendor text goes through `redact` first."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
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


MASK = "***"
# Secrets this long or longer are replaced wherever they appear in text; shorter ones only
# where they stand alone (see Redactor).
SUBSTRING_MIN = 4
_WORD = "A-Za-z0-9"


def sanitize(text: str) -> str:
    """Text safe to store anywhere: PostgreSQL text and JSONB cannot hold NUL (U+0000)."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


class Redactor:
    """The credentials of one integration: its stored secrets plus those derived at delivery
    (OAuth access tokens, the credential part of auth headers a request carried).

    In free text (vendor bodies, error messages, URLs) a secret of `SUBSTRING_MIN` characters
    or more is replaced wherever it appears, also URL-encoded. A shorter one is replaced only
    where it stands alone: not preceded or followed by a letter or digit, as in a JSON string
    (`"ab1"`), a query parameter (`key=ab1&`) or a header value. Replacing every occurrence of
    a 2-character secret would mask every word containing those letters; never replacing it
    leaked it. `value` masks a structured value (a header) equal to a secret whatever its
    length. Everything returned is also `sanitize`d.
    """

    def __init__(self, secrets: Iterable[str] = (), derived_kept: int = 4) -> None:
        self._secrets: set[str] = set()
        self._derived: deque[str] = deque(maxlen=derived_kept)
        self._pattern: re.Pattern[str] | None = None
        self._compiled = True
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        new = {s for s in secrets if s and s != MASK} - self._secrets
        if new:
            self._secrets |= new
            self._compiled = False

    def derive(self, value: str) -> None:
        """A credential obtained at delivery (an access token): the last few are kept."""
        if value and value not in self._derived and value not in self._secrets:
            self._derived.append(value)
            self._compiled = False

    def with_extra(self, *secrets: str) -> Redactor:
        """A copy that also hides `secrets` (the credentials one request carried)."""
        copy = Redactor((*self._secrets, *self._derived, *secrets))
        return copy

    def _regex(self) -> re.Pattern[str] | None:
        if not self._compiled:
            self._compiled = True
            forms: set[str] = set()
            short: set[str] = set()
            for secret in (*self._secrets, *self._derived):
                target = forms if len(secret) >= SUBSTRING_MIN else short
                target.update((secret, quote(secret, safe=""), quote_plus(secret, safe="")))
            parts = [re.escape(f) for f in sorted(forms, key=len, reverse=True)]
            parts += [
                f"(?<![{_WORD}]){re.escape(f)}(?![{_WORD}])"
                for f in sorted(short, key=len, reverse=True)
            ]
            self._pattern = re.compile("|".join(parts)) if parts else None
        return self._pattern

    def text(self, text: str) -> str:
        pattern = self._regex()
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return sanitize(text)

    def value(self, value: str) -> str:
        if value in self._secrets or value in self._derived:
            return MASK
        return self.text(value)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in vendor text (see Redactor)."""
    return Redactor(secrets).text(text)


class Throttle:
    """At most one log line per key per `interval` seconds; the next line allowed reports how
    many were held back meanwhile. Keys are bounded (oldest forgotten first)."""

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._max_keys = max_keys
        self._last: OrderedDict[Hashable, list[float]] = OrderedDict()

    def allow(self, key: Hashable) -> int | None:
        """None: hold this line back. Otherwise log it, with this many lines held back."""
        now = self._clock()
        entry = self._last.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return None
        held = int(entry[1]) if entry is not None else 0
        self._last[key] = [now, 0]
        self._last.move_to_end(key)
        while len(self._last) > self._max_keys:
            self._last.popitem(last=False)
        return held
