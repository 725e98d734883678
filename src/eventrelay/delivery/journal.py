"""What delivery tells the operator at INFO: every integration state change (error entered or
left, paused, resumed) and every discard, expiry and retry, each with the integration's id,
name and type, the reason, the vendor's HTTP status and its message (secrets redacted by the
caller).

Outcome lines repeat (a vendor outage retries thousands of events), so they are rate-limited
per integration, kind and reason: at most one line per `interval` seconds. The next line
reports the events of the lines held back meanwhile (`events`) and how many lines that was
(`held_back`); `flush` writes what is still held back once its interval has passed.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from eventrelay.logs import Throttle

log = logging.getLogger("eventrelay.delivery")
SUMMARY_SECONDS = 60.0

_Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Subject:
    """The integration a line is about."""

    id: str
    name: str
    type: str

    def fields(self) -> dict[str, str]:
        return {
            "integration_id": self.id,
            "integration_name": self.name,
            "integration_type": self.type,
        }


@dataclass(slots=True)
class _Held:
    events: int = 0
    lines: int = 0
    since: float = 0.0
    status: int | None = None
    message: str | None = None


class Journal:
    def __init__(
        self, interval: float = SUMMARY_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._throttle = Throttle(interval, clock)
        self._held: dict[_Key, _Held] = defaultdict(_Held)
        self._subjects: dict[str, Subject] = {}

    def outcome(
        self,
        subject: Subject,
        kind: str,
        reason: str,
        events: int,
        status: int | None = None,
        message: str | None = None,
    ) -> None:
        """`events` events were `kind` (discarded, expired, retried) for `reason`."""
        key = (subject.id, kind, reason)
        self._subjects[subject.id] = subject
        held_lines = self._throttle.allow(key)
        if held_lines is None:
            held = self._held[key]
            if not held.lines:
                held.since = self._clock()
            held.events += events
            held.lines += 1
            held.status, held.message = status or held.status, message or held.message
            return
        held = self._held.pop(key, _Held())
        self._write(subject, kind, reason, events + held.events, held.lines, status, message)

    def flush(self) -> None:
        """Write the summaries still held back whose interval has passed."""
        now = self._clock()
        for key, held in list(self._held.items()):
            if now - held.since < self._throttle.interval:
                continue
            del self._held[key]
            integration_id, kind, reason = key
            subject = self._subjects.get(integration_id)
            if subject is not None and held.lines:
                self._throttle.allow(key)  # restart its interval
                self._write(
                    subject, kind, reason, held.events, held.lines, held.status, held.message
                )

    def _write(
        self,
        subject: Subject,
        kind: str,
        reason: str,
        events: int,
        held_back: int,
        status: int | None,
        message: str | None,
    ) -> None:
        log.info(
            f"events {kind}",
            extra={
                **subject.fields(),
                "reason": reason,
                "vendor_status": status,
                "events": events,
                "held_back": held_back,
                "detail": message,
            },
        )

    def state(
        self,
        subject: Subject,
        old: str | None,
        new: str,
        reason: str | None = None,
        status: int | None = None,
    ) -> None:
        """An integration changed status (active, paused, error)."""
        if new == "error":
            text = "integration entered the error state"
        elif old == "error":
            text = "integration left the error state"
        elif new == "paused":
            text = "integration paused"
        else:
            text = "integration resumed"
        log.log(
            logging.WARNING if new == "error" else logging.INFO,
            text,
            extra={
                **subject.fields(),
                "status_old": old,
                "status_new": new,
                "reason": reason,
                "vendor_status": status,
            },
        )

    def forget(self, integration_id: str) -> None:
        self._subjects.pop(integration_id, None)
