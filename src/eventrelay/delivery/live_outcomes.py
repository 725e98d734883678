"""A settled batch's outcomes as the live view shows them (`routing/tap.py`): one entry per event
and integration, built only when someone watches the source.

    {"message_id", "integration_id", "name", "outcome", "reason"?, "status"?, "message"?,
     "attempt", "at"}

`outcome` is delivered, retried, discarded, filtered or expired; `reason` the vendor's or the
rule's reason code (`consent`, `integrations_object`, `trigger`, `http_500`, ...), `status` the
vendor's HTTP status when it answered, `message` its words shortened and redacted (the
integration's credentials never show). Neither the event's body nor the request sent is
included: the stream already shows the event as accepted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from eventrelay.delivery.health import IntegrationHealth
from eventrelay.delivery.services import Snapshot
from eventrelay.destinations.base import Outcome
from eventrelay.queue.base import Delivery

DELIVERED, RETRIED, DISCARDED, FILTERED, EXPIRED = (
    "delivered",
    "retried",
    "discarded",
    "filtered",
    "expired",
)
MAX_TEXT = 200  # the vendor's words, shortened: the failures page has them in full


def outcome_entries(
    snap: Snapshot,
    health: IntegrationHealth,
    now: float,
    statuses: dict[str, int],
    success: Sequence[Delivery] = (),
    filtered: Sequence[tuple[Delivery, str]] = (),
    expired: Sequence[Delivery] = (),
    failed: Sequence[tuple[str, Sequence[tuple[Delivery, Outcome]]]] = (),
) -> Iterator[dict[str, Any]]:
    """Lazily: the tap takes as many as its sampling allows. `failed`: (outcome name,
    [(delivery, vendor outcome)]) for retried, discarded and halted events."""

    def entry(delivery: Delivery, outcome: str) -> dict[str, Any]:
        return {
            "message_id": delivery.message_id,
            "integration_id": snap.id,
            "name": snap.name,
            "outcome": outcome,
            "attempt": delivery.attempts,
            "at": now,
        }

    for delivery in success:
        yield entry(delivery, DELIVERED)
    for delivery, reason in filtered:
        yield entry(delivery, FILTERED) | {"reason": reason}
    for delivery in expired:
        yield entry(delivery, EXPIRED) | {"reason": "max_age"}
    for name, pairs in failed:
        for delivery, vendor in pairs:
            item = entry(delivery, name)
            reason = vendor.reason or "unknown"
            item["reason"] = reason
            if reason in statuses:
                item["status"] = statuses[reason]
            if vendor.message:
                item["message"] = health.clean(vendor.message)[:MAX_TEXT]
            yield item
