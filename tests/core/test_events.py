"""Segment-spec validation and normalisation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventrelay.core.events import InvalidEvent, Received, normalize
from eventrelay.timeutil import epoch_ms

RECEIVED = Received.at(datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC))


def ok(event: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return normalize(dict(event), RECEIVED, **kw)


def field_of(event: Any, **kw: Any) -> str:
    with pytest.raises(InvalidEvent) as info:
        normalize(event, RECEIVED, **kw)
    return info.value.error.field


def test_stamps_received_at_and_message_id() -> None:
    event = ok({"type": "track", "userId": "u1", "event": "Signed Up"})
    assert event["receivedAt"] == "2026-11-25T12:00:00.000Z"
    assert event["timestamp"] == event["receivedAt"]
    assert len(event["messageId"]) == 36
    kept = ok({"type": "track", "userId": "u1", "event": "x", "messageId": "client-1"})
    assert kept["messageId"] == "client-1"


def test_clock_skew_correction_like_segment() -> None:
    # The client's clock is 1 hour behind: it says it sent at 11:00:10 an event from 11:00:00.
    event = ok(
        {
            "type": "track",
            "userId": "u1",
            "event": "x",
            "timestamp": "2026-11-25T11:00:00+00:00",
            "sentAt": "2026-11-25T11:00:10Z",
        }
    )
    assert event["timestamp"] == "2026-11-25T11:59:50.000Z"
    assert event["originalTimestamp"] == "2026-11-25T11:00:00+00:00"
    batch_level = ok(
        {"type": "track", "userId": "u1", "event": "x", "timestamp": "2026-11-25T13:00:00+01:00"},
        batch_sent_at=epoch_ms(datetime(2026, 11, 25, 12, 0, 5, tzinfo=UTC)),
    )
    assert batch_level["timestamp"] == "2026-11-25T11:59:55.000Z"


def test_timestamp_without_sent_at_is_kept() -> None:
    event = ok({"type": "page", "anonymousId": "a", "timestamp": "2026-11-20T10:00:00-05:00"})
    assert event["timestamp"] == "2026-11-20T15:00:00.000Z"


def test_null_ids_count_as_absent() -> None:
    # segment-analytics-python sends "anonymousId": null explicitly.
    event = ok({"type": "identify", "userId": "u1", "anonymousId": None})
    assert "anonymousId" not in event
    assert field_of({"type": "identify", "userId": None, "anonymousId": None}) == "userId"
    numeric = ok({"type": "identify", "userId": 42})
    assert numeric["userId"] == "42"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "track", "userId": "u"}, "event"),
        ({"type": "track", "userId": "u", "event": "  "}, "event"),
        ({"type": "alias", "userId": "u"}, "previousId"),
        ({"type": "group", "userId": "u"}, "groupId"),
        ({"type": "nope", "userId": "u"}, "type"),
        ({"type": "track", "userId": "u", "event": "x", "properties": []}, "properties"),
        ({"type": "track", "userId": "u", "event": "x", "timestamp": "yesterday"}, "timestamp"),
        ({"type": "track", "userId": "u", "event": "x", "messageId": "m" * 101}, "messageId"),
        ({"type": "track", "userId": {"a": 1}, "event": "x"}, "userId"),
        ({"type": "page", "userId": "u", "name": 5}, "name"),
    ],
)
def test_invalid_events_name_the_field(event: dict[str, Any], field: str) -> None:
    assert field_of(event) == field


def test_endpoint_type_wins_and_write_key_is_dropped() -> None:
    event = ok({"type": "identify", "userId": "u", "event": "x", "writeKey": "wk"}, type_="track")
    assert event["type"] == "track"
    assert "writeKey" not in event


def test_batch_context_is_merged_under_event_context() -> None:
    event = ok(
        {"type": "track", "userId": "u", "event": "x", "context": {"ip": "1.2.3.4"}},
        batch_context={"library": {"name": "lib"}, "ip": "9.9.9.9"},
    )
    assert event["context"] == {"library": {"name": "lib"}, "ip": "1.2.3.4"}
