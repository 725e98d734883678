"""The delivery loop of one integration: pull a batch, build the vendor's requests, send,
classify, settle each event. Every integration has its own loop, concurrency and retry state, so
a slow or failing vendor never delays another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventrelay.core.consent import allows, granted_categories
from eventrelay.delivery.failures import FailureLog, describe_request, describe_response
from eventrelay.delivery.health import IntegrationHealth
from eventrelay.delivery.policy import RetryPolicy
from eventrelay.delivery.sender import HttpSender, TransportError
from eventrelay.delivery.tokens import TokenCache, TokenError
from eventrelay.destinations.base import (
    BuildContext,
    Destination,
    EventRecord,
    HttpRequest,
    HttpResponse,
    Outcome,
    OutcomeKind,
    VendorSettings,
    build_context,
)
from eventrelay.queue.base import Delivery, Queue
from eventrelay.store.metrics import MetricsRecorder
from eventrelay.tasks import stop_task
from eventrelay.telemetry import DELIVERY_EVENTS, DELIVERY_REQUEST_SECONDS

log = logging.getLogger("eventrelay.delivery")

PULL_TIMEOUT = 1.0
# Skip reasons from `build` that mean "not for this vendor" rather than "vendor refused".
FILTER_REASONS = frozenset({"unmapped", "unsupported_type", "consent", "no_identifier"})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An integration as one worker delivers it (config decrypted)."""

    id: str
    org_id: str
    type: str
    destination: Destination
    settings: VendorSettings
    consent_categories: tuple[str, ...]
    consent_default: str
    secrets: tuple[str, ...]
    version: tuple[object, ...]


@dataclass(slots=True)
class Services:
    queue: Queue
    sender: HttpSender
    metrics: MetricsRecorder
    failures: FailureLog
    policy: RetryPolicy
    concurrency: int
    # Operator overrides of vendor endpoints: {"<type>": base URL, "<type>.<name>": other}.
    base_urls: dict[str, str] = field(default_factory=dict)

    def context_for(self, type_: str, **kwargs: Any) -> BuildContext:
        return build_context(type_, self.base_urls, **kwargs)


@dataclass(slots=True)
class _Settled:
    success: list[Delivery] = field(default_factory=list)
    retry: list[tuple[Delivery, Outcome]] = field(default_factory=list)
    drop: list[tuple[Delivery, Outcome]] = field(default_factory=list)
    filtered: list[tuple[Delivery, str]] = field(default_factory=list)
    halt: list[tuple[Delivery, Outcome]] = field(default_factory=list)  # auth / disable


class IntegrationWorker:
    def __init__(self, snapshot: Snapshot, services: Services, health: IntegrationHealth) -> None:
        self.snapshot = snapshot
        self._s = services
        self.health = health
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._requests = asyncio.Semaphore(services.concurrency)
        self._tokens = TokenCache(snapshot.destination, snapshot.settings, services.sender)

    @property
    def stream(self) -> str:
        return self.snapshot.id

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"deliver-{self.snapshot.id}")

    async def stop(self, drain_timeout: float = 20.0) -> None:
        """Stop pulling; let in-flight batches finish (unfinished ones are redelivered later)."""
        self._stopping.set()
        await stop_task(self._loop_task)
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _run(self) -> None:
        snap = self.snapshot
        batch_size = snap.destination.batch_size(snap.settings)
        fill = snap.destination.batch_wait_seconds(snap.settings)
        slots = asyncio.Semaphore(self._s.concurrency)
        while not self._stopping.is_set() and not self.health.in_error:
            await slots.acquire()
            try:
                batch = await self._s.queue.pull(self.stream, batch_size, PULL_TIMEOUT, fill)
            except asyncio.CancelledError:
                slots.release()
                raise
            except Exception as exc:
                slots.release()
                log.warning(
                    "pull failed",
                    extra={"integration_id": snap.id, "error_type": type(exc).__name__},
                )
                await asyncio.sleep(1.0)
                continue
            if not batch:
                slots.release()
                continue
            task = asyncio.create_task(self._process(batch))
            self._inflight.add(task)

            def done(t: asyncio.Task[None]) -> None:
                self._inflight.discard(t)
                slots.release()

            task.add_done_callback(done)

    # --- one batch ---------------------------------------------------------------------------

    async def _process(self, batch: Sequence[Delivery]) -> None:
        lease = self._s.queue.lease_seconds
        keeper = asyncio.create_task(self._keep_leased(batch, lease)) if lease else None
        try:
            await self._process_batch(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never lose a batch to a bug: hand it out again later
            log.error(
                "batch failed",
                extra={"integration_id": self.snapshot.id, "error_type": type(exc).__name__},
            )
            with contextlib.suppress(Exception):
                await self._s.queue.retry(self.stream, batch, self._s.policy.delay(2))
        finally:
            await stop_task(keeper)

    async def _keep_leased(self, batch: Sequence[Delivery], lease: float) -> None:
        """A batch can outlive the queue's lease (a slow vendor, a split, token refresh):
        renew it so no other worker is handed the same events meanwhile."""
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await self._s.queue.extend(self.stream, batch)
            except Exception as exc:
                log.warning(
                    "lease renewal failed",
                    extra={"integration_id": self.snapshot.id, "error_type": type(exc).__name__},
                )

    async def _process_batch(self, batch: Sequence[Delivery]) -> None:
        snap = self.snapshot
        now = time.time()
        settled = _Settled()
        live: list[Delivery] = []
        for delivery in batch:
            if self._s.policy.expired(delivery.published_at, now):
                settled.drop.append((delivery, Outcome(OutcomeKind.DROP, "expired")))
            else:
                live.append(delivery)
        if snap.consent_categories and live:
            # Consent is checked again at delivery: the integration may require more by now.
            kept = []
            for delivery in live:
                event = EventRecord(delivery.message_id, delivery.data).data
                if allows(snap.consent_categories, granted_categories(event), snap.consent_default):
                    kept.append(delivery)
                else:
                    settled.filtered.append((delivery, "consent"))
            live = kept
        self._latencies("time_to_first_attempt", [d for d in live if d.attempts == 1], now)
        if live:
            await self._deliver(live, settled)
        await self._settle(settled)

    async def _deliver(
        self, deliveries: Sequence[Delivery], settled: _Settled, refreshed: bool = False
    ) -> None:
        snap = self.snapshot
        records = [EventRecord(d.message_id, d.data) for d in deliveries]
        ctx = self._s.context_for(snap.type)
        if self._tokens.needed(ctx):
            try:
                token = await self._tokens.get(ctx, force=refreshed)
            except TokenError as exc:
                kind = OutcomeKind.RETRY if exc.retryable else OutcomeKind.AUTH
                outcome = Outcome(kind, "oauth_token", exc.message)
                target = settled.retry if exc.retryable else settled.halt
                target.extend((d, outcome) for d in deliveries)
                return
            ctx = self._s.context_for(snap.type, access_token=token)
        try:
            built = snap.destination.build(records, snap.settings, ctx)
        except Exception as exc:
            log.error(
                "build failed",
                extra={"integration_id": snap.id, "error_type": type(exc).__name__},
            )
            outcome = Outcome(
                OutcomeKind.RETRY,
                "build_error",
                f"could not build the request: {type(exc).__name__}",
            )
            settled.retry.extend((d, outcome) for d in deliveries)
            return
        for index, reason in built.skipped.items():
            if reason in FILTER_REASONS:
                settled.filtered.append((deliveries[index], reason))
            else:
                settled.drop.append((deliveries[index], Outcome(OutcomeKind.DROP, reason)))
        attempt = _Settled() if ctx.access_token and not refreshed else settled
        await asyncio.gather(
            *(self._send(request, deliveries, attempt) for request in built.requests)
        )
        if attempt is settled:
            return
        # An access token can be revoked before it expires: refresh once on 401, then retry.
        unauthorized = [(d, o) for d, o in attempt.halt if o.kind is OutcomeKind.AUTH]
        attempt.halt = [(d, o) for d, o in attempt.halt if o.kind is not OutcomeKind.AUTH]
        for name in ("success", "retry", "drop", "filtered", "halt"):
            getattr(settled, name).extend(getattr(attempt, name))
        if unauthorized:
            await self._deliver([d for d, _ in unauthorized], settled, refreshed=True)

    async def _send(
        self, request: HttpRequest, deliveries: Sequence[Delivery], settled: _Settled
    ) -> None:
        snap = self.snapshot
        mine = [deliveries[i] for i in request.event_indices]
        response: HttpResponse | None = None
        async with self._requests:
            started = time.monotonic()
            try:
                response = await self._s.sender.send(request)
                DELIVERY_REQUEST_SECONDS.labels(snap.type).observe(time.monotonic() - started)
            except TransportError as exc:
                kind = OutcomeKind.DISABLE if exc.reason == "target_refused" else OutcomeKind.RETRY
                outcomes = [Outcome(kind, exc.reason, exc.message)]
        if response is not None:
            outcomes = snap.destination.classify(request, response)
        if len(outcomes) == 1 and len(mine) > 1:
            outcomes = outcomes * len(mine)
        if any(o.kind is OutcomeKind.SPLIT for o in outcomes):
            await self._split(mine, outcomes[0], settled)
            return
        failed: list[tuple[Delivery, Outcome]] = []
        for delivery, outcome in zip(mine, outcomes, strict=True):
            if outcome.kind is OutcomeKind.SUCCESS:
                settled.success.append(delivery)
                continue
            failed.append((delivery, outcome))
            if outcome.kind is OutcomeKind.RETRY:
                settled.retry.append((delivery, outcome))
            elif outcome.kind is OutcomeKind.DROP:
                settled.drop.append((delivery, outcome))
            else:
                settled.halt.append((delivery, outcome))
        if failed:
            self._record_failure(request, response, failed)

    async def _split(self, mine: Sequence[Delivery], outcome: Outcome, settled: _Settled) -> None:
        """The vendor refused a whole batch for one bad event: resend halves to isolate it."""
        if len(mine) == 1:
            settled.drop.append(
                (mine[0], Outcome(OutcomeKind.DROP, outcome.reason, outcome.message))
            )
            return
        middle = len(mine) // 2
        await self._deliver(mine[:middle], settled)
        await self._deliver(mine[middle:], settled)

    def _record_failure(
        self,
        request: HttpRequest,
        response: HttpResponse | None,
        failed: Sequence[tuple[Delivery, Outcome]],
    ) -> None:
        snap = self.snapshot
        delivery, outcome = failed[0]
        self._s.failures.record(
            snap.id,
            outcome.kind.value,
            outcome.reason,
            self.health.clean(outcome.message or outcome.reason or ""),
            delivery.attempts,
            [d.message_id for d, _ in failed],
            describe_request(request, snap.secrets),
            describe_response(response, snap.secrets) if response else None,
        )

    def _latencies(self, name: str, deliveries: Sequence[Delivery], now: float) -> None:
        # One histogram update per millisecond of publish time: events published together share
        # it (SQLite stamps a chunk once, JetStream each message within the same few ms).
        for published_ms, count in Counter(int(d.published_at * 1000) for d in deliveries).items():
            self._s.metrics.latency(self.snapshot.id, name, now * 1000 - published_ms, count)

    # --- settling ----------------------------------------------------------------------------

    async def _settle(self, settled: _Settled) -> None:
        snap = self.snapshot
        queue, metrics, policy = self._s.queue, self._s.metrics, self._s.policy
        now = time.time()
        counted = (
            ("success", len(settled.success)),
            ("retry", len(settled.retry) + len(settled.halt)),
            ("drop", len(settled.drop)),
            ("filtered", len(settled.filtered)),
        )
        for label, count in counted:
            if count:
                DELIVERY_EVENTS.labels(snap.id, snap.type, label).inc(count)
        if settled.success:
            await queue.ack(self.stream, settled.success)
            first = sum(1 for d in settled.success if d.attempts == 1)
            metrics.add(snap.id, "success_first_attempt", first)
            metrics.add(snap.id, "success_after_retry", len(settled.success) - first)
            self._latencies("time_to_success", settled.success, now)
            await self.health.success(now)
        if settled.filtered:
            await queue.terminate(self.stream, [d for d, _ in settled.filtered])
            for _, reason in settled.filtered:
                metrics.add(snap.id, "filtered", key=reason)
        expired = [d for d, o in settled.drop if o.reason == "expired"]
        dropped = [(d, o) for d, o in settled.drop if o.reason != "expired"]
        retry_groups: dict[float, list[Delivery]] = defaultdict(list)
        for delivery, outcome in settled.retry:
            delay = policy.delay(delivery.attempts, outcome.retry_after)
            if policy.expired(delivery.published_at, now + delay):
                expired.append(delivery)
            else:
                retry_groups[round(delay, 1)].append(delivery)
        if expired:
            await queue.terminate(self.stream, expired)
            metrics.add(snap.id, "expired", len(expired))
        if dropped:
            await queue.terminate(self.stream, [d for d, _ in dropped])
            for _, outcome in dropped:
                metrics.add(snap.id, "discarded", key=outcome.reason or "unknown")
        for delay, group in retry_groups.items():
            await queue.retry(self.stream, group, delay)
            metrics.add(snap.id, "retried", len(group))
        if settled.halt:
            # Events are kept; the integration waits in the error state until resumed.
            await queue.retry(self.stream, [d for d, _ in settled.halt], policy.base)
            metrics.add(snap.id, "retried", len(settled.halt))
            _, outcome = settled.halt[0]
            label = (
                "credentials refused"
                if outcome.kind is OutcomeKind.AUTH
                else "vendor asked to stop"
            )
            await self.health.enter_error(
                f"{label} ({outcome.reason}): {outcome.message or ''}", now
            )
        elif settled.retry or dropped:
            outcome = (settled.retry or dropped)[0][1]
            await self.health.failure(f"{outcome.reason}: {outcome.message or ''}", now)
