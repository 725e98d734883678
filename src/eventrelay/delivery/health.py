"""Integration health as delivery sees it: last delivery, sustained failure, error state.

State lives in the integrations row, written with conditional updates so any number of workers
agree: `failing_since` is set by the first failure after a success and cleared by a success;
the error state is entered only while the row is still `active`. Writes are throttled: a busy
integration costs about one write per second, not one per event.

Sustained failure is checked on a timer, not only when the next attempt fails: with a long
backoff (or a vendor's Retry-After) the next failure may come long after the window ends, and
the error state must not wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update

from eventrelay.bus import Change, ConfigBus
from eventrelay.delivery.journal import Journal, Subject
from eventrelay.logs import Redactor
from eventrelay.store import audit
from eventrelay.store.audit import Actor
from eventrelay.store.db import Database
from eventrelay.store.tables import integrations
from eventrelay.tasks import stop_task

log = logging.getLogger("eventrelay.delivery")
MAX_MESSAGE = 1000
_WRITE_EVERY = 1.0
_RETRY_CHECK = 5.0  # the window check failed (database away): try again this much later
_SLACK = timedelta(seconds=1)  # clocks of several workers


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class IntegrationHealth:
    def __init__(
        self,
        db: Database,
        bus: ConfigBus,
        subject: Subject,
        org_id: str,
        window: float,
        redactor: Redactor,
        journal: Journal,
    ) -> None:
        self._db = db
        self._bus = bus
        self.subject = subject
        self.integration_id = subject.id
        self._org_id = org_id
        self._window = window
        self.redactor = redactor
        self._journal = journal
        self._failing_since: float | None = None
        # The row may hold a `failing_since` from before this worker started: the first
        # success clears it.
        self._row_unknown = True
        self._last_message = ""
        self._last_status: int | None = None
        self._last_delivery_write = 0.0
        self._last_error_write = 0.0
        self._timer: asyncio.Task[None] | None = None
        self.in_error = False
        # Set before the error state is written: the worker sends nothing more meanwhile.
        self.halting = False

    def clean(self, message: str) -> str:
        return self.redactor.text(message)[:MAX_MESSAGE]

    @property
    def stopped(self) -> bool:
        """In error, or about to be: deliver nothing more."""
        return self.in_error or self.halting

    async def close(self) -> None:
        await stop_task(self._timer)
        self._timer = None

    async def success(self, at: float | None = None) -> None:
        now = at or time.time()
        values: dict[str, object] = {}
        if self._failing_since is not None or self._row_unknown:
            self._failing_since = None
            self._row_unknown = False
            values["failing_since"] = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
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

    async def failure(
        self, message: str, at: float | None = None, status: int | None = None
    ) -> None:
        """A failed attempt (retried or discarded). Sustained failure enters the error state."""
        now = at or time.time()
        message = self.clean(message)
        self._last_message, self._last_status = message, status
        if self._failing_since is None:
            # Set before any await: concurrent batches failing together start one window.
            self._failing_since = now
            self._timer = asyncio.create_task(
                self._watch(), name=f"error-window-{self.integration_id}"
            )
            started = await self._start_failing(now)
            if self._failing_since is not None:  # no success meanwhile
                self._failing_since = min(self._failing_since, started)
        if now - self._last_error_write >= _WRITE_EVERY:
            self._last_error_write = now
            async with self._db.transaction() as conn:
                # Never over the error state's own message: a batch failing late (its retry
                # already handed out) must not hide why the integration stopped.
                await conn.execute(
                    update(integrations)
                    .where(
                        integrations.c.id == self.integration_id, integrations.c.status != "error"
                    )
                    .values(last_error_message=message, last_error_at=_dt(now))
                )

    async def _start_failing(self, now: float) -> float:
        """Mark the row failing from now, unless it already is: then failing started at the
        later of its `failing_since` and its last delivery (another worker, or before a
        restart). The timer (`_watch`) enters the error state when the window has passed."""
        self._row_unknown = False
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(integrations)
                .where(
                    integrations.c.id == self.integration_id,
                    integrations.c.failing_since.is_(None),
                )
                .values(failing_since=_dt(now))
            )
            if result.rowcount:
                return now
            row = (
                await conn.execute(
                    select(integrations.c.failing_since, integrations.c.last_delivery_at).where(
                        integrations.c.id == self.integration_id
                    )
                )
            ).first()
        if row is None or row.failing_since is None:
            return now
        started = float(row.failing_since.timestamp())
        if row.last_delivery_at is not None:
            started = max(started, float(row.last_delivery_at.timestamp()))
        return min(started, now)

    async def _watch(self) -> None:
        """Enter the error state when the window passes with no success (cancelled by one)."""
        while self._failing_since is not None and not self.in_error:
            due = self._failing_since + self._window - time.time()
            if due > 0:
                await asyncio.sleep(due)
                continue
            try:
                # Shielded: stopping the worker must not cut a database write in half.
                await asyncio.shield(self._window_passed(time.time()))
                continue
            except Exception as exc:
                log.warning(
                    "error window check failed",
                    extra={"integration_id": self.integration_id, "error_type": type(exc).__name__},
                )
                await asyncio.sleep(_RETRY_CHECK)

    async def _window_passed(self, now: float) -> None:
        await self.enter_error(
            f"no successful delivery for {self._window:g} s; last error: {self._last_message}",
            now,
            status=self._last_status,
            window=True,
        )

    async def enter_error(
        self,
        message: str,
        at: float | None = None,
        status: int | None = None,
        window: bool = False,
    ) -> None:
        """Put the integration in error (delivery pauses, events are kept)."""
        now = at or time.time()
        message = self.clean(message)
        conditions = [
            integrations.c.id == self.integration_id,
            integrations.c.status == "active",
        ]
        if window:
            # Another worker may have delivered meanwhile: the row decides.
            since = _dt(now - self._window) + _SLACK
            conditions.append(integrations.c.failing_since <= since)
            conditions.append(
                or_(
                    integrations.c.last_delivery_at.is_(None),
                    integrations.c.last_delivery_at <= since,
                )
            )
        try:
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
        finally:
            self.halting = False
        if changed:
            self.in_error = True
            self._journal.state(self.subject, "active", "error", message, status)
            await self._bus.publish(Change("integration", self.integration_id))
        elif window and self._failing_since is not None:
            # The row says otherwise (another worker delivered, or the integration is no
            # longer active): count the window again from what the row shows.
            started = await self._start_failing(now)
            self._failing_since = started if started + self._window > now else now
