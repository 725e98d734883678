"""The delivery loop of one integration: pull a batch, build the vendor's requests, send,
classify, settle each event. Every integration has its own loop, concurrency and retry state, so
a slow or failing vendor never delays another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from eventrelay.delivery.failures import (
    credentials_of,
    describe_request,
    describe_response,
)
from eventrelay.delivery.health import MAX_MESSAGE, IntegrationHealth
from eventrelay.delivery.ruled import apply_rules, collapse, failure_outcome, record_of
from eventrelay.delivery.sender import TransportError
from eventrelay.delivery.services import Services, Snapshot
from eventrelay.delivery.settle import RETRIED, Settled, Settler
from eventrelay.delivery.tokens import TokenCache, TokenError
from eventrelay.destinations.base import (
    EventRecord,
    HttpRequest,
    HttpResponse,
    Outcome,
    OutcomeKind,
)
from eventrelay.queue.base import Delivery
from eventrelay.routing.router import selects
from eventrelay.tasks import stop_task
from eventrelay.telemetry import DELIVERY_EVENTS, DELIVERY_REQUEST_SECONDS

log = logging.getLogger("eventrelay.delivery")

PULL_TIMEOUT = 1.0
# Skip reasons from `build` that mean "not for this vendor" rather than "vendor refused".
FILTER_REASONS = frozenset({"unmapped", "unsupported_type", "consent", "no_identifier"})


class IntegrationWorker:
    def __init__(self, snapshot: Snapshot, services: Services, health: IntegrationHealth) -> None:
        self.snapshot = snapshot
        self._s = services
        self.health = health
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._requests = asyncio.Semaphore(services.concurrency)
        self._tokens = TokenCache(
            snapshot.destination,
            snapshot.settings,
            services.sender,
            on_token=health.redactor.derive,  # access tokens are credentials too
        )
        self._settler = Settler(snapshot, services, health)

    @property
    def stream(self) -> str:
        return self.snapshot.id

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"deliver-{self.snapshot.id}")

    async def stop(self, drain_timeout: float = 20.0) -> None:
        """Stop pulling; let in-flight batches finish for `drain_timeout`, then cancel them
        (a cancelled batch hands its events back to the queue at once)."""
        self._stopping.set()
        await stop_task(self._loop_task)
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self.health.close()
        if self.snapshot.rules is not None:
            await asyncio.to_thread(self.snapshot.rules.close)  # a function's isolate

    async def _run(self) -> None:
        snap = self.snapshot
        batch_size = snap.destination.batch_size(snap.settings)
        fill = snap.destination.batch_wait_seconds(snap.settings)
        slots = asyncio.Semaphore(self._s.concurrency)
        await self._subscribe()
        while not self._stopping.is_set() and not self.health.in_error:
            if self.health.halting:  # another batch is putting the integration in error
                await asyncio.sleep(0.1)
                continue
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

    async def _subscribe(self) -> None:
        """Read the source's log from the integration's creation on (a reader that exists
        keeps its position); retried until the queue answers."""
        snap = self.snapshot
        while not self._stopping.is_set():
            try:
                await self._s.queue.subscribe(self.stream, snap.source_id, snap.since)
                return
            except Exception as exc:
                log.warning(
                    "subscribing failed",
                    extra={"integration_id": snap.id, "error_type": type(exc).__name__},
                )
                await asyncio.sleep(1.0)

    # --- one batch ---------------------------------------------------------------------------

    async def _process(self, batch: Sequence[Delivery]) -> None:
        if self.health.stopped:  # pulled while another batch put the integration in error
            await self._s.queue.release(self.stream, batch)
            return
        lease = self._s.queue.lease_seconds
        keeper = asyncio.create_task(self._keep_leased(batch, lease)) if lease else None
        try:
            await self._process_batch(batch)
        except asyncio.CancelledError:
            # Stopped mid-batch (an update, pause or error state while a slow vendor holds it,
            # or shutdown): what is not settled goes back to the queue now, not after a lease.
            await stop_task(keeper)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._s.queue.release(self.stream, batch))
            raise
        except Exception as exc:  # never lose a batch to a bug: record it, hand it out later
            await self._unexpected(batch, exc)
        finally:
            await stop_task(keeper)

    async def _unexpected(self, batch: Sequence[Delivery], exc: Exception) -> None:
        """An error outside the vendor exchange (the queue or the database failing, a bug):
        the batch is retried with backoff and the failure is recorded like any other, so a
        lasting one reaches the error state through the failure window."""
        snap = self.snapshot
        kind = type(exc).__name__
        log.error("batch failed", extra={"integration_id": snap.id, "error_type": kind})
        message = f"unexpected {kind} while delivering; the events are retried"
        failed = [(d, Outcome(OutcomeKind.RETRY, "internal_error", message)) for d in batch]
        self._record_failure(None, None, failed)
        DELIVERY_EVENTS.labels(snap.id, snap.type, RETRIED).inc(len(batch))
        self._s.metrics.add(snap.id, "retried", len(batch))
        self._s.journal.outcome(snap.subject, RETRIED, "internal_error", len(batch))
        self._settler.show(Settled(), (), (), failed, time.time())
        # If the queue refuses the retry too, the batch's lease runs out and it comes back.
        with contextlib.suppress(Exception):
            await self._s.queue.retry(self.stream, batch, self._s.policy.delay(batch[0].attempts))
        with contextlib.suppress(Exception):
            await self.health.failure(message)

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
        settled = Settled()
        live: list[Delivery] = []
        for delivery in batch:
            if self._s.policy.expired(delivery.published_at, now):
                settled.drop.append((delivery, Outcome(OutcomeKind.DROP, "expired")))
            else:
                live.append(delivery)
        if live:
            live = self._routed(live, settled)
        if snap.rules is not None and live:
            if snap.rules.slow:  # a function in the sandbox: off the event loop
                live, failures = await asyncio.to_thread(apply_rules, snap.rules, live, settled)
            else:
                live, failures = apply_rules(snap.rules, live, settled)
            by_message: dict[str, list[Delivery]] = {}
            for failure in failures:  # fail closed, and say why in the failure log
                by_message.setdefault(failure.message, []).append(failure.delivery)
            for message, failed in by_message.items():
                outcome = failure_outcome(message)
                self._record_failure(None, None, [(d, outcome) for d in failed])
        self._settler.latencies("time_to_first_attempt", [d for d in live if d.attempts == 1], now)
        if live:
            await self._deliver(live, settled)
        await self._settle(settled)

    def _routed(self, deliveries: list[Delivery], settled: Settled) -> list[Delivery]:
        """The per-event half of routing, decided here rather than at ingest (the event is
        stored once for every integration): its `integrations` object, and consent (which
        the integration may require more of by now)."""
        snap = self.snapshot
        kept: list[Delivery] = []
        for delivery in deliveries:
            if not snap.consent_categories and b'"integrations"' not in delivery.data:
                kept.append(delivery)  # the common case: nothing to decide, nothing to parse
                continue
            event = EventRecord(delivery.message_id, delivery.data).data
            reason = (
                selects(
                    event,
                    snap.name,
                    snap.select_keys,
                    snap.consent_categories,
                    snap.consent_default,
                )
                if isinstance(event, dict)
                else None
            )
            if reason is None:
                kept.append(delivery)
            else:
                settled.filtered.append((delivery, reason))
        return kept

    async def _settle(self, settled: Settled) -> None:
        """Outcomes to the queue, metrics, journal and health (file loads add their own).
        Events the rules changed settle their queue message (`collapse`)."""
        await self._settler.apply(collapse(settled))

    async def _deliver(
        self, deliveries: Sequence[Delivery], settled: Settled, refreshed: bool = False
    ) -> None:
        snap = self.snapshot
        records = [record_of(d) for d in deliveries]
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
            error = type(exc).__name__
            log.error("build failed", extra={"integration_id": snap.id, "error_type": error})
            outcome = Outcome(
                OutcomeKind.RETRY, "build_error", f"could not build the request: {error}"
            )
            failed = [(d, outcome) for d in deliveries]
            settled.retry.extend(failed)
            settled.unexpected = error
            self._record_failure(None, None, failed)
            return
        for index, reason in built.skipped.items():
            if reason in FILTER_REASONS:
                settled.filtered.append((deliveries[index], reason))
            else:
                settled.drop.append((deliveries[index], Outcome(OutcomeKind.DROP, reason)))
        attempt = Settled() if ctx.access_token and not refreshed else settled
        await asyncio.gather(
            *(self._send(request, deliveries, attempt) for request in built.requests)
        )
        if attempt is settled:
            return
        # An access token can be revoked before it expires: refresh once on 401, then retry.
        unauthorized = [(d, o) for d, o in attempt.halt if o.kind is OutcomeKind.AUTH]
        attempt.halt = [(d, o) for d, o in attempt.halt if o.kind is not OutcomeKind.AUTH]
        settled.merge(attempt)
        if unauthorized:
            await self._deliver([d for d, _ in unauthorized], settled, refreshed=True)

    async def _send(
        self, request: HttpRequest, deliveries: Sequence[Delivery], settled: Settled
    ) -> None:
        snap = self.snapshot
        mine = [deliveries[i] for i in request.event_indices]
        response: HttpResponse | None = None
        try:
            async with self._requests:
                started = time.monotonic()
                try:
                    response = await self._s.sender.send(request)
                    DELIVERY_REQUEST_SECONDS.labels(snap.type).observe(time.monotonic() - started)
                except TransportError as exc:
                    disable = exc.reason == "target_refused"
                    kind = OutcomeKind.DISABLE if disable else OutcomeKind.RETRY
                    outcomes = [Outcome(kind, exc.reason, exc.message)]
            if response is not None:
                outcomes = snap.destination.classify(request, response)
        except Exception as exc:
            # A request the client cannot send (a header it refuses) or an answer the
            # destination cannot read: a failure like any other, never a silent loop.
            kind_name = type(exc).__name__
            log.error("send failed", extra={"integration_id": snap.id, "error_type": kind_name})
            settled.unexpected = kind_name
            message = f"unexpected {kind_name} while sending the request or reading the answer"
            outcomes = [Outcome(OutcomeKind.RETRY, "internal_error", message)]
        if any(o.kind is not OutcomeKind.SUCCESS and o.message for o in outcomes):
            # The vendor's words may quote any credential this request carried.
            redactor = self.health.redactor.with_extra(*credentials_of(request))
            outcomes = [
                replace(o, message=redactor.text(o.message)) if o.message else o for o in outcomes
            ]
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
            if response is not None:
                for _, outcome in failed:
                    settled.statuses.setdefault(outcome.reason or "", response.status)
            self._record_failure(request, response, failed)

    async def _split(self, mine: Sequence[Delivery], outcome: Outcome, settled: Settled) -> None:
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
        request: HttpRequest | None,
        response: HttpResponse | None,
        failed: Sequence[tuple[Delivery, Outcome]],
    ) -> None:
        snap = self.snapshot
        delivery, outcome = failed[0]
        redactor = self.health.redactor
        if request is not None:
            redactor = redactor.with_extra(*credentials_of(request))
        self._s.failures.record(
            snap.id,
            outcome.kind.value,
            outcome.reason,
            redactor.text(outcome.message or outcome.reason or "")[:MAX_MESSAGE],
            delivery.attempts,
            [d.message_id for d, _ in failed],
            describe_request(request, redactor) if request is not None else None,
            describe_response(response, redactor) if response is not None else None,
        )

    # --- settling ----------------------------------------------------------------------------
