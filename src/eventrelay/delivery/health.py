"""Integration health as delivery sees it: last delivery, sustained failure, error state.

State lives in the integrations row, written with conditional updates so any number of workers
agree: `failing_since` is set by the first failure after a success and cleared by a success;
the error state is entered only while the row is still `active`. Writes are throttled: a busy
integration costs about one write per second, not one per event.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from eventrelay.bus import Change, ConfigBus
from eventrelay.logs import redact
from eventrelay.store import audit
from eventrelay.store.audit import Actor
from eventrelay.store.db import Database
from eventrelay.store.tables import integrations

log = logging.getLogger("eventrelay.delivery")
MAX_MESSAGE = 1000
_WRITE_EVERY = 1.0


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class IntegrationHealth:
    def __init__(
        self,
        db: Database,
        bus: ConfigBus,
        integration_id: str,
        org_id: str,
        window: float,
        secrets: tuple[str, ...],
    ) -> None:
        self._db = db
        self._bus = bus
        self.integration_id = integration_id
        self._org_id = org_id
        self._window = window
        self._secrets = secrets
        self._failing_since: float | None = None
        self._last_delivery_write = 0.0
        self._last_error_write = 0.0
        self.in_error = False

    def clean(self, message: str) -> str:
        return redact(message, self._secrets)[:MAX_MESSAGE]

    async def success(self, at: float | None = None) -> None:
        now = at or time.time()
        values: dict[str, object] = {}
        if self._failing_since is not None:
            self._failing_since = None
            values["failing_since"] = None
        if now - self._last_delivery_write >= _WRITE_EVERY:
            self._last_delivery_write = now
            values["last_delivery_at"] = _dt(now)
        if values:
            async with self._db.transaction() as conn:
                await conn.execute(
                    update(integrations)
                    .where(integrations.c.id == self.integration_id)
                    .values(**values)
                )

    async def failure(self, message: str, at: float | None = None) -> None:
        """A failed attempt (retried or discarded). Sustained failure enters the error state."""
        now = at or time.time()
        message = self.clean(message)
        if self._failing_since is None:
            self._failing_since = now
            async with self._db.transaction() as conn:
                await conn.execute(
                    update(integrations)
                    .where(
                        integrations.c.id == self.integration_id,
                        integrations.c.failing_since.is_(None),
                    )
                    .values(failing_since=_dt(now))
                )
        if now - self._last_error_write >= _WRITE_EVERY:
            self._last_error_write = now
            async with self._db.transaction() as conn:
                await conn.execute(
                    update(integrations)
                    .where(integrations.c.id == self.integration_id)
                    .values(last_error_message=message, last_error_at=_dt(now))
                )
        if now - self._failing_since >= self._window:
            await self.enter_error(
                f"no successful delivery for {self._window:g} s; last error: {message}",
                now,
                require_failing_since=_dt(now - self._window),
            )

    async def enter_error(
        self,
        message: str,
        at: float | None = None,
        require_failing_since: datetime | None = None,
    ) -> None:
        """Put the integration in error (delivery pauses, events are kept)."""
        now = at or time.time()
        message = self.clean(message)
        conditions = [
            integrations.c.id == self.integration_id,
            integrations.c.status == "active",
        ]
        if require_failing_since is not None:
            # Another worker may have succeeded meanwhile: the row decides.
            conditions.append(
                integrations.c.failing_since <= require_failing_since + timedelta(seconds=1)
            )
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(integrations)
                .where(*conditions)
                .values(status="error", last_error_message=message, last_error_at=_dt(now))
            )
            changed = bool(result.rowcount)
            if changed:
                await audit.record(
                    conn,
                    Actor(self._org_id, None, "delivery"),
                    "integration.status_changed",
                    "integration",
                    self.integration_id,
                    {
                        "status": {"old": "active", "new": "error"},
                        "last_error_message": {"old": None, "new": message},
                    },
                )
        if changed:
            self.in_error = True
            log.warning(
                "integration entered the error state",
                extra={"integration_id": self.integration_id},
            )
            await self._bus.publish(Change("integration", self.integration_id))
