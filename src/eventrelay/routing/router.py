"""Routing: which integrations of a source receive each accepted event.

An event goes to every enabled integration of its source whose consent categories are all
granted in the event. What is not routed is counted (filtered: disabled, consent,
unavailable) rather than silently dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventrelay.core.consent import allows, granted_categories
from eventrelay.queue.base import Message
from eventrelay.routing.directory import SourceEntry


@dataclass(slots=True)
class Routed:
    batches: dict[str, list[Message]] = field(default_factory=dict)
    filtered: Counter[tuple[str, str]] = field(default_factory=Counter)  # (integration, reason)


def route(source: SourceEntry, events: Sequence[tuple[dict[str, Any], bytes]]) -> Routed:
    """`events` are (normalised event, its JSON) pairs."""
    result = Routed()
    if not events:
        return result
    granted: list[frozenset[str] | None] | None = None
    for target in source.routes:
        if not target.enabled:
            result.filtered[(target.integration_id, "disabled")] += len(events)
            continue
        if not target.deliverable:
            result.filtered[(target.integration_id, "unavailable")] += len(events)
            continue
        if not target.consent_categories:
            chosen = [Message(e["messageId"], raw) for e, raw in events]
        else:
            if granted is None:
                granted = [granted_categories(e) for e, _ in events]
            chosen = [
                Message(e["messageId"], raw)
                for (e, raw), g in zip(events, granted, strict=True)
                if allows(target.consent_categories, g, source.consent_default)
            ]
            denied = len(events) - len(chosen)
            if denied:
                result.filtered[(target.integration_id, "consent")] += denied
        if chosen:
            result.batches[target.integration_id] = chosen
    return result
