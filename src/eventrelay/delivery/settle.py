"""Settling one batch: each event's outcome goes to the queue (ack, retry after a delay,
terminate), the metrics (admin API and Prometheus, one vocabulary), the journal (INFO log lines)
and the integration's health (last delivery, failure window, error state)."""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from eventrelay.delivery.health import IntegrationHealth
from eventrelay.delivery.live_outcomes import DISCARDED as LIVE_DISCARDED
from eventrelay.delivery.live_outcomes import RETRIED as LIVE_RETRIED
from eventrelay.delivery.live_outcomes import outcome_entries
from eventrelay.delivery.services import Services, Snapshot
from eventrelay.destinations.base import Outcome, OutcomeKind
from eventrelay.queue.base import Delivery
from eventrelay.telemetry import DELIVERY_EVENTS

log = logging.getLogger("eventrelay.delivery")

# Batches in a row that fail with an unexpected error (a bug in building, sending or reading
# the vendor's answer, not the vendor refusing) before the integration enters the error state.
UNEXPECTED_ERRORS_TO_HALT = 3
HALT_RETRY_DELAY = 5.0
# The metric names of the admin API, also the `outcome` label of eventrelay_delivery_events.
SUCCESSES, RETRIED, DISCARDED, EXPIRED, FILTERED = (
    "successes",
    "retried",
    "discarded",
    "expired",
    "filtered",
)


@dataclass(slots=True)
class Settled:
    success: list[Delivery] = field(default_factory=list)
    retry: list[tuple[Delivery, Outcome]] = field(default_factory=list)
    drop: list[tuple[Delivery, Outcome]] = field(default_factory=list)
    filtered: list[tuple[Delivery, str]] = field(default_factory=list)
    halt: list[tuple[Delivery, Outcome]] = field(default_factory=list)  # auth / disable
    statuses: dict[str, int] = field(default_factory=dict)  # vendor HTTP status per reason
    unexpected: str | None = None  # an unexpected error's type, if one happened

    def merge(self, other: Settled) -> None:
        for name in ("success", "retry", "drop", "filtered", "halt"):
            getattr(self, name).extend(getattr(other, name))
        self.statuses.update(other.statuses)
        self.unexpected = self.unexpected or other.unexpected


class Settler:
    def __init__(self, snapshot: Snapshot, services: Services, health: IntegrationHealth) -> None:
        self.snapshot = snapshot
        self._s = services
        self.health = health
        self._unexpected_streak = 0

    def latencies(self, name: str, deliveries: Sequence[Delivery], now: float) -> None:
        # One histogram update per millisecond of publish time: events published together share
        # it (SQLite stamps a chunk once, JetStream each message within the same few ms).
        for published_ms, count in Counter(int(d.published_at * 1000) for d in deliveries).items():
            self._s.metrics.latency(self.snapshot.id, name, now * 1000 - published_ms, count)

    async def apply(self, settled: Settled) -> None:
        snap = self.snapshot
        queue, metrics, policy, journal = (
            self._s.queue,
            self._s.metrics,
            self._s.policy,
            self._s.journal,
        )
        now = time.time()
        if settled.success:
            await self._tell(queue.ack(snap.id, settled.success), "ack", settled.success)
            first = sum(1 for d in settled.success if d.attempts == 1)
            metrics.add(snap.id, "success_first_attempt", first)
            metrics.add(snap.id, "success_after_retry", len(settled.success) - first)
            self._count(SUCCESSES, len(settled.success))
            self.latencies("time_to_success", settled.success, now)
            await self.health.success(now)
        if settled.filtered:
            filtered = [d for d, _ in settled.filtered]
            await self._tell(queue.terminate(snap.id, filtered), "terminate", filtered)
            for _, reason in settled.filtered:
                metrics.add(snap.id, "filtered", key=reason)
            self._count(FILTERED, len(settled.filtered))
        expired = [d for d, o in settled.drop if o.reason == "expired"]
        dropped = [(d, o) for d, o in settled.drop if o.reason != "expired"]
        retry_groups: dict[float, list[Delivery]] = defaultdict(list)
        retried: list[tuple[Delivery, Outcome]] = []
        for delivery, outcome in settled.retry:
            delay = policy.next_attempt(
                delivery.attempts, outcome.retry_after, delivery.published_at, now
            )
            if delay is None:
                expired.append(delivery)
            else:
                retry_groups[round(delay, 1)].append(delivery)
                retried.append((delivery, outcome))
        if expired:
            await self._tell(queue.terminate(snap.id, expired), "terminate", expired)
            metrics.add(snap.id, "expired", len(expired))
            self._count(EXPIRED, len(expired))
            journal.outcome(snap.subject, EXPIRED, "max_age", len(expired))
        if dropped:
            discarded = [d for d, _ in dropped]
            await self._tell(queue.terminate(snap.id, discarded), "terminate", discarded)
            for _, outcome in dropped:
                metrics.add(snap.id, "discarded", key=outcome.reason or "unknown")
            self._count(DISCARDED, len(dropped))
            self._journal(DISCARDED, dropped, settled)
        for delay, group in retry_groups.items():
            await self._tell(queue.retry(snap.id, group, delay), "retry", group)
            metrics.add(snap.id, "retried", len(group))
        if retried:
            self._count(RETRIED, len(retried))
            self._journal(RETRIED, retried, settled)
        self.show(settled, expired, dropped, retried, now)
        if settled.unexpected and not settled.halt:
            self._unexpected_streak += 1
        elif settled.success:
            self._unexpected_streak = 0
        if settled.halt:
            # Events are kept; the integration waits in the error state until resumed. No
            # other batch of this worker is sent meanwhile, and the halted events wait long
            # enough for every worker process to hear of the error state.
            self.health.halting = True
            halted = [d for d, _ in settled.halt]
            await self._tell(queue.retry(snap.id, halted, HALT_RETRY_DELAY), "retry", halted)
            metrics.add(snap.id, "retried", len(settled.halt))
            self._count(RETRIED, len(settled.halt))
            _, outcome = settled.halt[0]
            label = (
                "credentials refused"
                if outcome.kind is OutcomeKind.AUTH
                else "vendor asked to stop"
            )
            await self.health.enter_error(
                f"{label} ({outcome.reason}): {outcome.message or ''}",
                now,
                status=settled.statuses.get(outcome.reason or ""),
            )
        elif self._unexpected_streak >= UNEXPECTED_ERRORS_TO_HALT:
            self.health.halting = True
            await self.health.enter_error(
                f"delivery failed with an unexpected error ({settled.unexpected}) in"
                f" {self._unexpected_streak} batches in a row; events are kept",
                now,
            )
        elif settled.retry or dropped:
            outcome = (settled.retry or dropped)[0][1]
            await self.health.failure(
                f"{outcome.reason}: {outcome.message or ''}",
                now,
                status=settled.statuses.get(outcome.reason or ""),
            )

    def show(
        self,
        settled: Settled,
        expired: Sequence[Delivery],
        dropped: Sequence[tuple[Delivery, Outcome]],
        retried: Sequence[tuple[Delivery, Outcome]],
        now: float,
    ) -> None:
        """The live view (a set lookup when nobody watches the source): each event's outcome."""
        tap = self._s.tap
        source_id = self.snapshot.source_id
        if tap is None or source_id not in tap.watched:
            return
        failed = ((LIVE_RETRIED, retried), (LIVE_DISCARDED, dropped), (LIVE_RETRIED, settled.halt))
        count = (
            len(settled.success)
            + len(settled.filtered)
            + len(expired)
            + len(retried)
            + len(dropped)
            + len(settled.halt)
        )
        entries = outcome_entries(
            self.snapshot,
            self.health,
            now,
            settled.statuses,
            settled.success,
            settled.filtered,
            expired,
            failed,
        )
        tap.offer_outcomes(source_id, count, entries)

    async def _tell(self, settling: Awaitable[None], how: str, events: Sequence[Delivery]) -> None:
        """Settle with the queue. The outcome stands whether or not the queue confirms it (NATS
        restarting, a full disk): the vendor did accept or refuse these events, so they are
        counted as what happened, not as retried. Unconfirmed, they come back after their lease
        (at-least-once): a success may then be delivered again."""
        try:
            await settling
        except Exception as exc:
            log.warning(
                "the queue did not confirm a settlement; the events come back after their lease",
                extra={
                    "integration_id": self.snapshot.id,
                    "settlement": how,
                    "events": len(events),
                    "error_type": type(exc).__name__,
                },
            )

    def _count(self, outcome: str, count: int) -> None:
        DELIVERY_EVENTS.labels(self.snapshot.id, self.snapshot.type, outcome).inc(count)

    def _journal(
        self, kind: str, failed: Sequence[tuple[Delivery, Outcome]], settled: Settled
    ) -> None:
        """One (rate-limited) log line per reason."""
        by_reason: dict[str, list[Outcome]] = defaultdict(list)
        for _, outcome in failed:
            by_reason[outcome.reason or "unknown"].append(outcome)
        for reason, outcomes in by_reason.items():
            message = outcomes[0].message
            self._s.journal.outcome(
                self.snapshot.subject,
                kind,
                reason,
                len(outcomes),
                settled.statuses.get(reason),
                self.health.clean(message) if message else None,
            )
