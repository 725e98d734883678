"""Routing: which integrations of a source receive each accepted event.

An event goes to every enabled integration of its source that its `integrations` object
selects (Segment's rule, routing/selection.py) and whose consent categories are all granted in
the event. What is not routed is counted (filtered: disabled, unavailable, integrations_object,
consent) rather than silently dropped.

Ingest stores each event once, in its source's log, whatever the number of integrations:
`admit` decides per request what does not depend on the event (an integration paused or of a
type that does not deliver), so its cost does not grow with the events; the per-event decisions
(`selects`: the integrations object and consent) are the reading worker's. `route` makes every
decision at once, for the live view and previews.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventrelay.core.consent import allows, granted_categories
from eventrelay.queue.base import Message
from eventrelay.routing.directory import SourceEntry
from eventrelay.routing.selection import Selection, selection_of


@dataclass(slots=True)
class Routed:
    batches: dict[str, list[Message]] = field(default_factory=dict)
    filtered: Counter[tuple[str, str]] = field(default_factory=Counter)  # (integration, reason)


@dataclass(slots=True)
class Admitted:
    """One ingest request's routing: the integrations that read it from the log, those that
    must skip it (paused), and what that filtered."""

    readers: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    filtered: list[tuple[str, str]] = field(default_factory=list)  # (integration, reason)


def admit(source: SourceEntry) -> Admitted:
    result = Admitted()
    for target in source.routes:
        if not target.deliverable:
            result.filtered.append((target.integration_id, "unavailable"))
        elif not target.enabled:
            result.skip.append(target.integration_id)
            result.filtered.append((target.integration_id, "disabled"))
        else:
            result.readers.append(target.integration_id)
    return result


def selects(
    event: dict[str, Any],
    name: str,
    select_keys: tuple[str, ...],
    consent_categories: Sequence[str],
    consent_default: str,
) -> str | None:
    """Why an integration does not take this event (`integrations_object`, `consent`), or
    None when it does: the per-event half of routing, decided where the event is read."""
    selection = selection_of(event)
    if selection is not None and not selection.allows(name, select_keys):
        return "integrations_object"
    if consent_categories and not allows(
        consent_categories, granted_categories(event), consent_default
    ):
        return "consent"
    return None


def route(source: SourceEntry, events: Sequence[tuple[dict[str, Any], bytes]]) -> Routed:
    """`events` are (normalised event, its JSON) pairs."""
    result = Routed()
    if not events:
        return result
    granted: list[frozenset[str] | None] | None = None
    selections: list[Selection | None] | None = None
    everyone = range(len(events))
    for target in source.routes:
        if not target.enabled:
            result.filtered[(target.integration_id, "disabled")] += len(events)
            continue
        if not target.deliverable:
            result.filtered[(target.integration_id, "unavailable")] += len(events)
            continue
        if selections is None:
            selections = [selection_of(e) for e, _ in events]
            if not any(selections):
                selections = []  # the common case: nobody names integrations
        if not selections and not target.consent_categories:
            chosen = [Message(e["messageId"], raw) for e, raw in events]
        else:
            picked: Sequence[int] = everyone
            if selections:
                picked = [
                    i
                    for i, selection in enumerate(selections)
                    if selection is None or selection.allows(target.name, target.select_keys)
                ]
                if len(picked) < len(events):
                    result.filtered[(target.integration_id, "integrations_object")] += len(
                        events
                    ) - len(picked)
            if target.consent_categories:
                if granted is None:
                    granted = [granted_categories(e) for e, _ in events]
                consented = [
                    i
                    for i in picked
                    if allows(target.consent_categories, granted[i], source.consent_default)
                ]
                if len(consented) < len(picked):
                    result.filtered[(target.integration_id, "consent")] += len(picked) - len(
                        consented
                    )
                picked = consented
            chosen = [Message(events[i][0]["messageId"], events[i][1]) for i in picked]
        if chosen:
            result.batches[target.integration_id] = chosen
    return result
