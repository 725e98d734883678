"""Segment-spec events: validation and normalisation at ingest (pure, no I/O).

What the official SDKs send (segment-analytics-python, rudder-sdk-python) is accepted as is:
`"anonymousId": null` counts as absent, timestamps may carry any offset, `writeKey` may sit in
the body, identify traits may sit in `context.traits`. Normalisation stamps `receivedAt`, keeps
or assigns `messageId`, and corrects `timestamp` for client clock skew the way Segment does:
`timestamp = receivedAt - (sentAt - originalTimestamp)`.

This runs for every event at ingest, so it works on epoch milliseconds and formats timestamps
through a per-second cache rather than with datetime arithmetic.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventrelay.timeutil import MAX_EPOCH_MS, MIN_EPOCH_MS, epoch_ms, iso_from_epoch_ms, parse_iso

EVENT_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
MAX_MESSAGE_ID = 100
MAX_ID = 1024
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")


@dataclass(frozen=True, slots=True)
class EventError:
    field: str
    message: str


class InvalidEvent(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.error = EventError(field, message)


@dataclass(frozen=True, slots=True)
class Received:
    """When a request arrived, in the forms normalisation needs (computed once per request)."""

    ms: int
    iso: str
    batch_sent_at_iso: str | None = None  # the batch's sentAt, formatted once

    @classmethod
    def at(cls, when: datetime, batch_sent_at: int | None = None) -> Received:
        ms = epoch_ms(when)
        sent = iso_from_epoch_ms(batch_sent_at) if batch_sent_at is not None else None
        return cls(ms, iso_from_epoch_ms(ms), sent)


def _identifier(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None or value == "":
        event.pop(name, None)
        return None
    if type(value) is str:
        if len(value) > MAX_ID:
            raise InvalidEvent(name, f"must be at most {MAX_ID} characters")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(name, "must be a string")
    text = str(value)
    event[name] = text
    return text


def _time_ms(event: Mapping[str, Any], name: str) -> int | None:
    value = event.get(name)
    if value is None:
        return None
    if type(value) is not str:
        raise InvalidEvent(name, "must be an ISO 8601 date-time string")
    try:
        return epoch_ms(parse_iso(value))
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved by its offset
        raise InvalidEvent(name, "must be an ISO 8601 date-time string") from None


def normalize(
    raw: Any,
    received: Received,
    type_: str | None = None,
    batch_sent_at: int | None = None,
    batch_context: Mapping[str, Any] | None = None,
    batch_integrations: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate one event and return it normalised; raises InvalidEvent with the field at fault.

    `type_` is the endpoint's type for the single-event endpoints (it wins over the body).
    `batch_sent_at` is the batch's sentAt in epoch milliseconds.
    """
    if type(raw) is not dict:
        raise InvalidEvent("", "an event must be a JSON object")
    event: dict[str, Any] = raw
    event.pop("writeKey", None)
    kind = type_ or event.get("type")
    if type(kind) is not str or kind not in EVENT_TYPES:
        raise InvalidEvent("type", "must be one of track, identify, page, screen, group, alias")
    event["type"] = kind

    for name in _OBJECT_FIELDS:
        value = event.get(name, event)
        if value is event:
            continue
        if value is None:
            del event[name]
        elif type(value) is not dict:
            raise InvalidEvent(name, "must be an object")
    if batch_context:
        event["context"] = {**batch_context, **event.get("context", {})}
    if batch_integrations:
        event["integrations"] = {**batch_integrations, **event.get("integrations", {})}

    if _identifier(event, "userId") is None and _identifier(event, "anonymousId") is None:
        raise InvalidEvent("userId", "userId or anonymousId is required")
    if "anonymousId" in event:
        _identifier(event, "anonymousId")

    if kind == "track":
        event_name = event.get("event")
        if type(event_name) is not str or not event_name.strip():
            raise InvalidEvent("event", "is required for track")
        if len(event_name) > 200:
            raise InvalidEvent("event", "must be at most 200 characters")
    elif kind == "identify":
        if "traits" not in event:
            # rudder-sdk-python sends identify traits only as context.traits.
            context_traits = event.get("context", {}).get("traits")
            if isinstance(context_traits, dict):
                event["traits"] = dict(context_traits)
    elif kind == "alias":
        if _identifier(event, "previousId") is None:
            raise InvalidEvent("previousId", "is required for alias")
    elif kind == "group":
        if _identifier(event, "groupId") is None:
            raise InvalidEvent("groupId", "is required for group")
    else:  # page, screen
        for field in ("name", "category"):
            value = event.get(field)
            if value is not None and type(value) is not str:
                raise InvalidEvent(field, "must be a string")

    message_id = event.get("messageId")
    if message_id is None or message_id == "":
        event["messageId"] = str(uuid.uuid4())
    elif type(message_id) is not str or len(message_id) > MAX_MESSAGE_ID:
        raise InvalidEvent("messageId", f"must be a string of at most {MAX_MESSAGE_ID} characters")
    elif not message_id.isprintable():
        raise InvalidEvent("messageId", "must not contain control characters")

    timestamp = _time_ms(event, "timestamp")
    sent_at = _time_ms(event, "sentAt")
    if sent_at is None:
        sent_at = batch_sent_at
    original = _time_ms(event, "originalTimestamp") if "originalTimestamp" in event else None
    event["receivedAt"] = received.iso
    if timestamp is None and original is not None:
        # RudderStack's SDKs send only originalTimestamp (the device clock): correct it the same way.
        timestamp = original
    elif timestamp is not None:
        event["originalTimestamp"] = event["timestamp"]
    if timestamp is None:
        event["timestamp"] = received.iso
    else:
        if sent_at is not None:
            timestamp = received.ms - (sent_at - timestamp)
            if not MIN_EPOCH_MS <= timestamp <= MAX_EPOCH_MS:
                raise InvalidEvent(
                    "timestamp", "correcting it for the sentAt clock skew leaves years 1 to 9999"
                )
        event["timestamp"] = iso_from_epoch_ms(timestamp)
    if sent_at is not None:
        event["sentAt"] = (
            received.batch_sent_at_iso
            if sent_at == batch_sent_at and received.batch_sent_at_iso
            else iso_from_epoch_ms(sent_at)
        )
    return event


def parse_sent_at(value: Any) -> int | None:
    """The batch-level sentAt in epoch ms; an unparseable one is ignored (it only refines
    timestamps)."""
    if type(value) is not str:
        return None
    try:
        return epoch_ms(parse_iso(value))
    except (ValueError, OverflowError):
        return None
