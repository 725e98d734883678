"""Delivery of file-loading integrations (S3, warehouses): buffer, write, load, then ack.

`LoadWorker` is an `IntegrationWorker` whose pull loop buffers events (flush policy in
`load_buffer.py`) and whose delivery step writes the batch (the destination's pure `write`)
and loads it with the type's loader (`eventrelay.loaders`). Everything after that is shared
with every other type: expiry and consent checks, acknowledgements, retries, metrics, failure
log, health and the error state (`IntegrationWorker._process` and `_settle`).

- An event is acknowledged to the queue only after the load that contains it has committed.
- One load at a time per integration (warehouses serialise writes to a table anyway); the next
  buffer fills meanwhile, every held event's queue lease renewed through `Queue.extend`.
- A failed load is retried in place with backoff (the same batch: same id, same staged names,
  so the retry is idempotent), while the events stay leased; stopping, the error state or the
  max event age hand them back to the queue instead.
- Crash recovery goes through the load journal (`load_journal.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from eventrelay.delivery.health import IntegrationHealth
from eventrelay.delivery.load_buffer import Buffer, BufferBudget, Policy
from eventrelay.delivery.load_journal import LoadJournal
from eventrelay.delivery.ruled import record_of
from eventrelay.delivery.services import Services, Snapshot
from eventrelay.delivery.settle import Settled
from eventrelay.delivery.worker import FILTER_REASONS, PULL_TIMEOUT, IntegrationWorker
from eventrelay.destinations.base import Outcome, OutcomeKind
from eventrelay.destinations.loading import FileDestination, WriteContext, Written
from eventrelay.loaders import Loader, LoaderContext, LoadError, LoadReport, loader_for
from eventrelay.queue.base import Delivery
from eventrelay.store.db import Database
from eventrelay.tasks import stop_task
from eventrelay.telemetry import DELIVERY_REQUEST_SECONDS

log = logging.getLogger("eventrelay.delivery")

PULL_CHUNK = 1000
# Journal entries outlive the queue's max event age by this much (their events cannot return).
JOURNAL_MARGIN = 3600.0


@dataclass(slots=True)
class LoadServices:
    """What file-loading workers share in one process besides `Services`."""

    db: Database
    budget: BufferBudget


def worker_for(
    snapshot: Snapshot,
    services: Services,
    health: IntegrationHealth,
    source_id: str,
    loads: LoadServices,
) -> IntegrationWorker:
    if isinstance(snapshot.destination, FileDestination):
        return LoadWorker(snapshot, services, health, source_id, loads)
    return IntegrationWorker(snapshot, services, health)


class LoadWorker(IntegrationWorker):
    def __init__(
        self,
        snapshot: Snapshot,
        services: Services,
        health: IntegrationHealth,
        source_id: str,
        loads: LoadServices,
    ) -> None:
        super().__init__(snapshot, services, health)
        destination = snapshot.destination
        assert isinstance(destination, FileDestination)
        settings = snapshot.settings
        self._dest = destination
        self._source_id = source_id
        self._budget = loads.budget
        self._buffer = Buffer(
            Policy(
                destination.batch_size(settings),
                destination.batch_bytes(settings),
                destination.batch_wait_seconds(settings),
            ),
            loads.budget,
        )
        self._journal = LoadJournal(loads.db, snapshot.id, services.policy.max_age + JOURNAL_MARGIN)
        self._loader: Loader | None = None
        self._load_task: asyncio.Task[None] | None = None
        self._committed: list[str] = []  # batches to forget once their events are settled
        self._retried_in_place = 0

    # --- buffering ---------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._subscribe()
        lease = self._s.queue.lease_seconds
        keeper = asyncio.create_task(self._keep_buffer(lease)) if lease else None
        try:
            while not self._stopping.is_set() and not self.health.in_error:
                if self._buffer.due():
                    await self._flush()
                    continue
                if self._budget.spent and not self._buffer.deliveries:
                    await asyncio.sleep(0.1)  # other buffers flush and give their bytes back
                    continue
                wait = self._buffer.wait() if self._buffer.deliveries else PULL_TIMEOUT
                try:
                    got = await self._s.queue.pull(
                        self.stream,
                        min(PULL_CHUNK, self._buffer.room()),
                        max(0.001, min(PULL_TIMEOUT, wait)),
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "pull failed",
                        extra={
                            "integration_id": self.snapshot.id,
                            "error_type": type(exc).__name__,
                        },
                    )
                    await asyncio.sleep(1.0)
                    continue
                self._buffer.add(got)
            await self._release_buffer()
        finally:
            await stop_task(keeper)

    async def _flush(self) -> None:
        if self._load_task is not None and not self._load_task.done():
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({self._load_task, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not self._load_task.done():
                return  # stopping: the buffer is handed back
        batch, size = self._buffer.take()
        task = asyncio.create_task(self._process(batch), name=f"load-{self.snapshot.id}")
        self._inflight.add(task)
        self._load_task = task

        def done(t: asyncio.Task[None]) -> None:
            self._inflight.discard(t)
            self._budget.give(size)

        task.add_done_callback(done)

    async def _keep_buffer(self, lease: float) -> None:
        """Events wait in the buffer up to `batch_interval_ms`: keep their leases."""
        while True:
            await asyncio.sleep(lease / 3)
            held = list(self._buffer.deliveries)
            if not held:
                continue
            try:
                await self._s.queue.extend(self.stream, held)
            except Exception as exc:
                log.warning(
                    "lease renewal failed",
                    extra={"integration_id": self.snapshot.id, "error_type": type(exc).__name__},
                )

    async def _release_buffer(self) -> None:
        held, size = self._buffer.take()
        self._budget.give(size)
        if held:
            with contextlib.suppress(Exception):
                await self._s.queue.release(self.stream, held)

    async def stop(self, drain_timeout: float = 20.0) -> None:
        await super().stop(drain_timeout)
        await self._release_buffer()
        if self._loader is not None:
            with contextlib.suppress(Exception):
                await self._loader.close()

    # --- one batch ---------------------------------------------------------------------------

    async def _deliver(
        self, deliveries: Sequence[Delivery], settled: Settled, refreshed: bool = False
    ) -> None:
        try:
            rest = await self._recover(deliveries, settled)
        except LoadError as err:
            self._give_up(deliveries, err, settled)
            return
        try:
            await self._load(rest, settled)
        except LoadError as err:  # no loader (missing extra): nothing was settled yet
            self._give_up(rest, err, settled)

    async def _loader_now(self) -> Loader:
        if self._loader is None:
            snap = self.snapshot
            ctx = LoaderContext(snap.id, self._source_id, self._s.base_urls)
            self._loader = loader_for(self._dest, snap.settings, ctx)
        return self._loader

    async def _recover(self, deliveries: Sequence[Delivery], settled: Settled) -> list[Delivery]:
        """Events of a batch staged before a crash: acknowledged if that load committed."""
        ids = [d.message_id for d in deliveries]
        done = self._journal.recently_committed(ids)
        matches = await self._journal.matches(ids)
        if not matches and not done:
            return list(deliveries)
        for batch, held in matches:
            loader = await self._loader_now()
            if self._journal.known_committed(batch.batch_id) or await loader.committed(
                batch.batch_id, batch.refs
            ):
                self._journal.mark_committed(batch.batch_id)
                done |= held
            else:
                await self._journal.forget(batch.batch_id)
        if done:
            self._s.metrics.add(self.snapshot.id, "load_recovered", len(done))
            settled.success.extend(d for d in deliveries if d.message_id in done)
        return [d for d in deliveries if d.message_id not in done]

    async def _load(self, deliveries: Sequence[Delivery], settled: Settled) -> None:
        if not deliveries:
            return
        snap = self.snapshot
        loader = await self._loader_now()
        records = [record_of(d) for d in deliveries]
        ctx = WriteContext(datetime.now(UTC), self._source_id, snap.id)
        try:
            written = await asyncio.to_thread(self._dest.write, records, snap.settings, ctx)
        except Exception as exc:
            log.error(
                "write failed", extra={"integration_id": snap.id, "error_type": type(exc).__name__}
            )
            outcome = Outcome(
                OutcomeKind.RETRY, "build_error", f"could not write the batch: {type(exc).__name__}"
            )
            settled.retry.extend((d, outcome) for d in deliveries)
            return
        for index, reason in written.skipped.items():
            if reason in FILTER_REASONS:
                settled.filtered.append((deliveries[index], reason))
            else:
                settled.drop.append((deliveries[index], Outcome(OutcomeKind.DROP, reason)))
        # A repeated message_id rides with its first occurrence: same outcome, loaded once.
        members = [deliveries[i] for i in (*written.events, *written.duplicates)]
        if not written.events:
            return
        await self._journal.record(written, loader.refs(written))
        await self._attempts(loader, written, members, settled)

    async def _attempts(
        self, loader: Loader, written: Written, members: list[Delivery], settled: Settled
    ) -> None:
        snap = self.snapshot
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                report = await loader.load(written)
            except LoadError as err:
                self._record_load_failure(written, members, err, attempt)
                if err.committed is False or err.kind in (OutcomeKind.DROP, OutcomeKind.SPLIT):
                    await self._journal.forget(written.id)
                if err.kind is OutcomeKind.DROP and err.rows:
                    await self._drop_rows(members, err, settled)
                elif err.kind is OutcomeKind.SPLIT:
                    await self._split_load(members, err, settled)
                elif err.kind is OutcomeKind.RETRY and await self._backoff(members, err, attempt):
                    continue
                else:
                    self._give_up(members, err, settled)
                return
            DELIVERY_REQUEST_SECONDS.labels(snap.type).observe(time.monotonic() - started)
            self._succeeded(written, members, report, settled, attempt)
            return

    def _succeeded(
        self,
        written: Written,
        members: list[Delivery],
        report: LoadReport,
        settled: Settled,
        attempt: int,
    ) -> None:
        settled.success.extend(members)
        self._committed.append(written.id)
        if attempt > 1:  # retried in place: the queue's attempt count does not show it
            self._retried_in_place += sum(1 for d in members if d.attempts == 1)
        metrics = self._s.metrics
        metrics.add(self.snapshot.id, "load_batches", 1)
        if report.discarded_values:
            metrics.add(self.snapshot.id, "values_discarded", report.discarded_values)

    async def _settle(self, settled: Settled) -> None:
        committed, self._committed = self._committed, []
        late, self._retried_in_place = self._retried_in_place, 0
        await super()._settle(settled)
        if late:  # counted as first-attempt successes by the shared settle: move them
            self._s.metrics.add(self.snapshot.id, "success_first_attempt", -late)
            self._s.metrics.add(self.snapshot.id, "success_after_retry", late)
        for batch_id in committed:  # acknowledged; late redeliveries are caught in memory
            await self._journal.forget(batch_id, committed=True)

    async def _backoff(self, members: list[Delivery], err: LoadError, attempt: int) -> bool:
        """Wait before retrying the same batch in place; False when it should go back to the
        queue instead (stopping, error state, or an event would pass the max age)."""
        await self.health.failure(f"{err.reason}: {err.message}")
        self._s.metrics.add(self.snapshot.id, "retried", len(members))
        # Retried here, not through the queue: the live view hears of it all the same.
        outcome = Outcome(err.kind, err.reason, err.message, err.retry_after)
        self._settler.show(Settled(), (), (), [(d, outcome) for d in members], time.time())
        policy = self._s.policy
        delay = policy.delay(attempt, err.retry_after)
        if self.health.in_error or self._stopping.is_set():
            return False
        if any(policy.expired(d.published_at, time.time() + delay) for d in members):
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        return not self._stopping.is_set()

    def _give_up(self, members: Sequence[Delivery], err: LoadError, settled: Settled) -> None:
        outcome = Outcome(err.kind, err.reason, err.message, err.retry_after)
        if err.kind is OutcomeKind.RETRY:
            settled.retry.extend((d, outcome) for d in members)
        elif err.kind is OutcomeKind.DROP:
            settled.drop.extend((d, outcome) for d in members)
        else:  # credentials, permissions, missing target: error state, events kept
            settled.halt.extend((d, outcome) for d in members)

    async def _drop_rows(self, members: list[Delivery], err: LoadError, settled: Settled) -> None:
        """The service refused some rows: discard those events with its reason, load the rest
        (a new batch, so a new id)."""
        refused = [d for d in members if d.message_id in err.rows]
        for delivery in refused:
            settled.drop.append(
                (delivery, Outcome(OutcomeKind.DROP, err.reason, err.rows[delivery.message_id]))
            )
        rest = [d for d in members if d.message_id not in err.rows]
        if rest and len(rest) < len(members):
            await self._load(rest, settled)
        elif rest:
            self._give_up(rest, err, settled)

    async def _split_load(self, members: list[Delivery], err: LoadError, settled: Settled) -> None:
        """A load failed for a row the service does not name: bisect to isolate it."""
        ids = list(dict.fromkeys(d.message_id for d in members))
        if len(ids) == 1:
            outcome = Outcome(OutcomeKind.DROP, err.reason, err.message)
            settled.drop.extend((d, outcome) for d in members)
            return
        first = set(ids[: len(ids) // 2])
        await self._load([d for d in members if d.message_id in first], settled)
        await self._load([d for d in members if d.message_id not in first], settled)

    def _record_load_failure(
        self, written: Written, members: list[Delivery], err: LoadError, attempt: int
    ) -> None:
        snap = self.snapshot
        message = err.message
        if err.rows:
            listed = "; ".join(f"{mid}: {why}" for mid, why in list(err.rows.items())[:10])
            message = f"{message} ({len(err.rows)} rows refused: {listed})"
        self._s.failures.record(
            snap.id,
            err.kind.value,
            err.reason,
            self.health.clean(message),
            attempt,
            [d.message_id for d in members if not err.rows or d.message_id in err.rows],
            {
                "method": "LOAD",
                "url": self._describe(written),
                "batch_id": written.id,
                "events": len(written.message_ids),
            },
            None,
        )

    def _describe(self, written: Written) -> str:
        refs = self._loader.refs(written) if self._loader else []
        return ", ".join(refs[:5]) + (f" (+{len(refs) - 5})" if len(refs) > 5 else "")
