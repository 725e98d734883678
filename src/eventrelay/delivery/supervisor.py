"""Runs one delivery worker per active integration and keeps the set current.

Configuration changes arrive on the config bus; they are applied one at a time by the
supervisor's own task (a worker that puts its integration in error publishes a change, and must
not wait on its own shutdown). A worker being replaced or stopped drains in the background for
EVENTRELAY_DRAIN_SECONDS, then hands back what it still holds, so one slow vendor never holds
up the changes of other integrations. A full resync every 30 s covers anything missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from eventrelay.bus import Change, ConfigBus
from eventrelay.delivery.failures import FailureLog
from eventrelay.delivery.health import IntegrationHealth
from eventrelay.delivery.journal import Subject
from eventrelay.delivery.load_buffer import BufferBudget
from eventrelay.delivery.loading import LoadServices, worker_for
from eventrelay.delivery.services import Services, Snapshot
from eventrelay.delivery.settle import EXPIRED
from eventrelay.delivery.stored_config import secret_values, stored_rules, vendor_settings
from eventrelay.delivery.worker import IntegrationWorker
from eventrelay.destinations import registry
from eventrelay.errors import validation_details
from eventrelay.logs import Redactor
from eventrelay.routing.selection import type_keys
from eventrelay.rules import RulesInvalid, compile_rules
from eventrelay.runtime import Runtime
from eventrelay.store import integrations as integration_store
from eventrelay.store.tables import sources as sources_table
from eventrelay.tasks import stop_task
from eventrelay.telemetry import (
    DELIVERY_EVENTS,
    INTEGRATION_BACKLOG,
    INTEGRATION_STATUS,
    INTEGRATION_STATUSES,
    forget_integration,
)

log = logging.getLogger("eventrelay.delivery")
TICK_SECONDS = 15.0  # gauges and held-back log summaries
RESYNC_TICKS = 2  # full resync every 30 s
JANITOR_TICKS = 4  # expiry and failure-log pruning every minute


class DeliverySupervisor:
    def __init__(self, rt: Runtime, services: Services, failures: FailureLog) -> None:
        self._rt = rt
        self._bus: ConfigBus = rt.bus
        self._services = services
        self._failures = failures
        self._workers: dict[str, IntegrationWorker] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._known: dict[str, tuple[str, Subject]] = {}  # id -> (status, who), for logs
        self._changes: asyncio.Queue[Change] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        # File-loading integrations (S3, warehouses) share a memory budget for held events.
        self._loads = LoadServices(rt.db, BufferBudget(rt.settings.load_buffer_mb * 1024 * 1024))

    @property
    def workers(self) -> Mapping[str, IntegrationWorker]:
        return self._workers

    async def start(self) -> None:
        self._bus.subscribe(self._on_change)
        await self.resync()
        self._tasks = [
            asyncio.create_task(self._apply_changes(), name="supervisor-changes"),
            asyncio.create_task(self._periodic(), name="supervisor-periodic"),
        ]

    async def close(self) -> None:
        self._bus.unsubscribe(self._on_change)
        for task in self._tasks:
            await stop_task(task)
        for worker in self._workers.values():
            self._retire(worker)
        self._workers.clear()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    def _retire(self, worker: IntegrationWorker, drain: float | None = None) -> None:
        if drain is None:
            drain = self._rt.settings.drain_seconds
        task = asyncio.create_task(worker.stop(drain), name=f"retire-{worker.stream}")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _on_change(self, change: Change) -> None:
        if change.kind in ("integration", "source", "all"):
            self._changes.put_nowait(change)

    async def _apply_changes(self) -> None:
        while True:
            change = await self._changes.get()
            try:
                if change.kind == "integration":
                    await self.sync_integration(change.id)
                else:
                    await self.resync()
            except Exception as exc:
                log.warning("applying a change failed", extra={"error_type": type(exc).__name__})

    async def _periodic(self) -> None:
        tick = 0
        while True:
            await asyncio.sleep(TICK_SECONDS)
            tick += 1
            try:
                self._services.journal.flush()
                await self.refresh_gauges()
                if tick % JANITOR_TICKS == 0:
                    await self.expire()
                    await self._failures.prune()
                if tick % RESYNC_TICKS == 0:
                    await self.resync()
            except Exception as exc:
                log.warning("maintenance failed", extra={"error_type": type(exc).__name__})

    async def expire(self) -> None:
        """Drop queued events past the max age that no worker holds (paused integrations)."""
        counts = await self._services.queue.expire(self._services.policy.max_age)
        for integration_id, count in counts.items():
            self._services.metrics.add(integration_id, "expired", count)
            known = self._known.get(integration_id)
            if known is not None:
                _, who = known
                DELIVERY_EVENTS.labels(who.id, who.type, EXPIRED).inc(count)
                self._services.journal.outcome(who, EXPIRED, "max_age", count)

    async def refresh_gauges(self) -> None:
        """Backlog per integration (this queue's view, shared by every worker process)."""
        depths = await self._services.queue.depths()
        for integration_id, (_, who) in self._known.items():
            INTEGRATION_BACKLOG.labels(integration_id, who.type).set(depths.get(integration_id, 0))

    async def resync(self) -> None:
        async with self._rt.db.read() as conn:
            rows = await integration_store.all_live(conn)
            defaults = {
                r.id: r.consent_default
                for r in await conn.execute(
                    sources_table.select().with_only_columns(
                        sources_table.c.id, sources_table.c.consent_default
                    )
                )
            }
        live = {row["id"] for row in rows}
        for integration_id in set(self._workers) | set(self._known):
            if integration_id not in live:
                await self.sync_integration(integration_id)
        for row in rows:
            await self._apply(row, defaults.get(row["source_id"], "deny"))

    async def sync_integration(self, integration_id: str) -> None:
        async with self._rt.db.read() as conn:
            row = await integration_store.get_any(conn, integration_id)
        if row is None or row["deleted_at"] is not None:
            worker = self._workers.pop(integration_id, None)
            if worker:
                # Deleted: its events are discarded, the ones in flight included (no drain).
                self._retire(worker, drain=0.0)
            known = self._known.pop(integration_id, None)
            if known is not None:
                forget_integration(integration_id, known[1].type)
                self._services.journal.forget(integration_id)
            # Deleting an integration discards its queued events.
            await self._services.queue.purge(integration_id)
            return
        await self._apply(row, await self._consent_default(row["source_id"]))

    async def _consent_default(self, source_id: str) -> str:
        async with self._rt.db.read() as conn:
            row = (
                await conn.execute(sources_table.select().where(sources_table.c.id == source_id))
            ).first()
        return str(row.consent_default) if row else "deny"

    def _observe(self, row: Mapping[str, Any]) -> Subject:
        """Status gauge, and a log line when an integration was paused, resumed or left the
        error state (entering it is logged by the worker that decided it)."""
        who = Subject(row["id"], row["name"], row["type"])
        status = str(row["status"])
        before = self._known.get(who.id)
        self._known[who.id] = (status, who)
        for name in INTEGRATION_STATUSES:
            INTEGRATION_STATUS.labels(who.id, who.type, name).set(1 if name == status else 0)
        if before is not None and before[0] != status and status != "error":
            self._services.journal.state(who, before[0], status)
        return who

    async def _apply(self, row: Mapping[str, Any], consent_default: str) -> None:
        integration_id = row["id"]
        who = self._observe(row)
        destination = registry.get(row["type"])
        should_run = row["status"] == "active" and destination is not None and destination.delivers
        current = self._workers.get(integration_id)
        version = (row["updated_at"], row["status"], consent_default)
        if current and (not should_run or current.snapshot.version != version):
            self._workers.pop(integration_id, None)
            self._retire(current)
            current = None
        if not should_run or current is not None:
            return
        assert destination is not None
        secrets = secret_values(self._rt.vault, row)
        redactor = Redactor(secrets)
        health = IntegrationHealth(
            self._rt.db,
            self._bus,
            who,
            row["org_id"],
            self._rt.settings.error_window_seconds,
            redactor,
            self._services.journal,
        )
        try:
            settings = vendor_settings(self._rt.vault, row)
        except ValidationError as exc:
            # Stored before a stricter check (say, a header value with a control character):
            # delivery cannot start, and the integration says why instead of staying silent.
            problems = "; ".join(
                f"{d['field']}: {d['message']}" for d in validation_details(exc.errors(), "config")
            )
            await health.enter_error(f"the stored configuration is invalid ({problems}); update it")
            return
        try:
            raw_rules = stored_rules(row)
            rules = None
            if raw_rules is not None:
                # A function builds its isolate: in a thread, and without the dry run of save.
                rules = await asyncio.to_thread(compile_rules, raw_rules, True, False)
        except RulesInvalid as exc:
            # Validated on save; a function the sandbox refuses now (limits changed) lands here.
            await health.enter_error(f"the stored rules are invalid ({exc}); update them")
            return
        snapshot = Snapshot(
            id=integration_id,
            org_id=row["org_id"],
            type=row["type"],
            name=row["name"],
            destination=destination,
            settings=settings,
            consent_categories=tuple(row["consent_categories"]),
            consent_default=consent_default,
            secrets=secrets,
            version=version,
            rules=rules if rules is not None and not rules.empty else None,
            source_id=row["source_id"],
            since=row["created_at"].timestamp(),
            select_keys=type_keys(row["type"], destination.title),
        )
        worker = worker_for(snapshot, self._services, health, row["source_id"], self._loads)
        self._workers[integration_id] = worker
        worker.start()
