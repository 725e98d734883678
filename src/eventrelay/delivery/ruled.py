"""Routing rules in the delivery path: after a worker reads its events (and checks consent),
before `build()` or the load buffer, for every destination type alike.

An event the rules change travels on as a `RuledDelivery` (the new bytes, the queue's delivery
inside); an event they stop is settled as filtered with the rule's reason. A function may turn
one event into several: each is delivered, and the queue's message is settled once, by the
worst of their outcomes (`collapse`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from eventrelay.delivery.settle import Settled
from eventrelay.destinations.base import EventRecord, Outcome, OutcomeKind
from eventrelay.queue.base import Delivery
from eventrelay.rules import CompiledRules
from eventrelay.rules.engine import TRANSFORMATION_ERROR


@dataclass(frozen=True, slots=True, eq=False)
class RuledDelivery:
    """An event as the rules left it; `original` is what the queue settles."""

    original: Delivery
    message_id: str
    data: bytes
    event: dict[str, Any] = field(repr=False)

    @property
    def published_at(self) -> float:
        return self.original.published_at

    @property
    def attempts(self) -> int:
        return self.original.attempts


def record_of(delivery: Delivery) -> EventRecord:
    if isinstance(delivery, RuledDelivery):
        return EventRecord(delivery.message_id, delivery.data, delivery.event)
    return EventRecord(delivery.message_id, delivery.data)


def original(delivery: Delivery) -> Delivery:
    return delivery.original if isinstance(delivery, RuledDelivery) else delivery


@dataclass(slots=True)
class RuleFailure:
    delivery: Delivery
    message: str


def apply_rules(
    rules: CompiledRules, deliveries: Sequence[Delivery], settled: Settled
) -> tuple[list[Delivery], list[RuleFailure]]:
    """(what goes on to the vendor, the events a transformation failed on)."""
    kept: list[Delivery] = []
    failures: list[RuleFailure] = []
    judged: list[tuple[Delivery, Any]] = []
    for delivery in deliveries:
        try:
            judged.append((delivery, orjson.loads(delivery.data)))
        except orjson.JSONDecodeError:
            kept.append(delivery)  # not ours to judge: build() reports it as before
    decisions = rules.apply_many([event for _, event in judged])
    for (delivery, _), decision in zip(judged, decisions, strict=True):
        if decision.filtered:
            assert decision.reason is not None
            settled.filtered.append((delivery, decision.reason))
            if decision.reason == TRANSFORMATION_ERROR:
                failures.append(RuleFailure(delivery, decision.error or "transformation failed"))
            continue
        if not decision.changed:
            kept.append(delivery)
            continue
        for index, out in enumerate(decision.events):
            message_id = delivery.message_id if index == 0 else f"{delivery.message_id}-{index}"
            if out.get("messageId") != message_id:
                out = {**out, "messageId": message_id}  # dedup ids stay stable across retries
            kept.append(RuledDelivery(delivery, message_id, orjson.dumps(out), out))
    return kept, failures


def failure_outcome(message: str) -> Outcome:
    return Outcome(OutcomeKind.DROP, TRANSFORMATION_ERROR, message)


_RANK = {"halt": 4, "retry": 3, "drop": 2, "filtered": 1, "success": 0}


def collapse(settled: Settled) -> Settled:
    """Outcomes per queue message: rule-changed events settle their original, and a message
    that became several events takes the worst of their outcomes (a retry resends all; the
    stable ids let vendors drop the repeats)."""
    if not any(
        isinstance(d, RuledDelivery)
        for d in (
            *settled.success,
            *(d for d, _ in settled.retry),
            *(d for d, _ in settled.drop),
            *(d for d, _ in settled.filtered),
            *(d for d, _ in settled.halt),
        )
    ):
        return settled
    best: dict[int, tuple[int, Delivery, str, Any]] = {}

    def note(kind: str, delivery: Delivery, detail: Any) -> None:
        queued = original(delivery)
        key = id(queued)
        rank = _RANK[kind]
        if key not in best or rank > best[key][0]:
            best[key] = (rank, queued, kind, detail)

    for d in settled.success:
        note("success", d, None)
    for d, reason in settled.filtered:
        note("filtered", d, reason)
    for d, outcome in settled.drop:
        note("drop", d, outcome)
    for d, outcome in settled.retry:
        note("retry", d, outcome)
    for d, outcome in settled.halt:
        note("halt", d, outcome)
    out = Settled(statuses=settled.statuses, unexpected=settled.unexpected)
    for _, queued, kind, detail in best.values():
        if kind == "success":
            out.success.append(queued)
        else:
            getattr(out, kind).append((queued, detail))
    return out
