"""Runs one delivery worker per active integration and keeps the set current.

Configuration changes arrive on the config bus; they are applied one at a time by the
supervisor's own task (a worker that puts its integration in error publishes a change, and must
not wait on its own shutdown). A full resync every 30 s covers anything missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from eventrelay.bus import Change, ConfigBus
from eventrelay.delivery.failures import FailureLog
from eventrelay.delivery.health import IntegrationHealth
from eventrelay.delivery.load_buffer import BufferBudget
from eventrelay.delivery.loading import LoadServices, worker_for
from eventrelay.delivery.stored_config import secret_values, vendor_settings
from eventrelay.delivery.worker import IntegrationWorker, Services, Snapshot
from eventrelay.destinations import registry
from eventrelay.runtime import Runtime
from eventrelay.store import integrations as integration_store
from eventrelay.store.tables import sources as sources_table
from eventrelay.tasks import stop_task

log = logging.getLogger("eventrelay.delivery")
RESYNC_SECONDS = 30.0
JANITOR_SECONDS = 60.0


class DeliverySupervisor:
    def __init__(self, rt: Runtime, services: Services, failures: FailureLog) -> None:
        self._rt = rt
        self._bus: ConfigBus = rt.bus
        self._services = services
        self._failures = failures
        self._workers: dict[str, IntegrationWorker] = {}
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
        drain = self._rt.settings.drain_seconds
        await asyncio.gather(*(w.stop(drain) for w in self._workers.values()))
        self._workers.clear()

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
        elapsed = 0.0
        while True:
            await asyncio.sleep(JANITOR_SECONDS)
            elapsed += JANITOR_SECONDS
            try:
                await self.expire()
                await self._failures.prune()
                if elapsed >= RESYNC_SECONDS:
                    elapsed = 0.0
                    await self.resync()
            except Exception as exc:
                log.warning("maintenance failed", extra={"error_type": type(exc).__name__})

    async def expire(self) -> None:
        """Drop queued events past the max age that no worker holds (paused integrations)."""
        counts = await self._services.queue.expire(self._services.policy.max_age)
        for integration_id, count in counts.items():
            self._services.metrics.add(integration_id, "expired", count)

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
        for integration_id in list(self._workers):
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
                await worker.stop()
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

    async def _apply(self, row: Mapping[str, Any], consent_default: str) -> None:
        integration_id = row["id"]
        destination = registry.get(row["type"])
        should_run = row["status"] == "active" and destination is not None and destination.delivers
        current = self._workers.get(integration_id)
        version = (row["updated_at"], row["status"], consent_default)
        if current and (not should_run or current.snapshot.version != version):
            self._workers.pop(integration_id, None)
            await current.stop()
            current = None
        if not should_run or current is not None:
            return
        assert destination is not None
        settings = vendor_settings(self._rt.vault, row)
        secrets = secret_values(self._rt.vault, row)
        snapshot = Snapshot(
            id=integration_id,
            org_id=row["org_id"],
            type=row["type"],
            destination=destination,
            settings=settings,
            consent_categories=tuple(row["consent_categories"]),
            consent_default=consent_default,
            secrets=secrets,
            version=version,
        )
        health = IntegrationHealth(
            self._rt.db,
            self._bus,
            integration_id,
            row["org_id"],
            self._rt.settings.error_window_seconds,
            secrets,
        )
        worker = worker_for(snapshot, self._services, health, row["source_id"], self._loads)
        self._workers[integration_id] = worker
        worker.start()
