"""The load journal of one file-loading integration: which events each staged batch holds.

A batch is recorded before its upload starts and forgotten once its events are acknowledged.
If a worker dies in between (after the upload, before the load; or after the load, before the
acknowledgements), the queue hands the events out again, possibly to another worker and in
another grouping. Before loading, a worker matches the events it holds against the journal:
- the batch committed (the loader's `committed`: the object exists, the warehouse's ledger
  has it): those events are acknowledged, not loaded again;
- it did not: its entry is dropped and the events are loaded with the others.
Retries within one worker reuse the batch as it is (same id, same staged names), so only a
crash takes this path. A worker also remembers the message ids of its last committed batches:
an event redelivered to it after its lease lapsed (a stalled process) while its batch was
loading is acknowledged, not loaded a second time. Entries older than the queue's max event age are pruned: their events
cannot come back.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from datetime import timedelta

from eventrelay.destinations.loading import Written
from eventrelay.ids import new_id
from eventrelay.store import load_batches
from eventrelay.store.db import Database
from eventrelay.store.load_batches import OpenBatch
from eventrelay.timeutil import utcnow

PRUNE_EVERY = 3600.0
RECENT_BATCHES = 2


class LoadJournal:
    def __init__(self, db: Database, integration_id: str, keep_for: float) -> None:
        self._db = db
        self._integration_id = integration_id
        self._keep_for = keep_for
        self.owner = new_id("wrk")  # this worker instance
        self._ids: dict[str, frozenset[str]] = {}  # batch id -> message ids (cache)
        self._committed: set[str] = set()  # batches known to have committed
        self._pruned_at = 0.0
        self._recent: deque[frozenset[str]] = deque(maxlen=RECENT_BATCHES)

    async def record(self, written: Written, refs: Sequence[str]) -> None:
        async with self._db.transaction() as conn:
            await load_batches.record(
                conn, self._integration_id, written.id, self.owner, refs, written.message_ids
            )
        self._ids[written.id] = frozenset(written.message_ids)

    async def forget(self, batch_id: str, committed: bool = False) -> None:
        async with self._db.transaction() as conn:
            await load_batches.forget(conn, self._integration_id, batch_id)
        ids = self._ids.pop(batch_id, None)
        if committed and ids:
            self._recent.append(ids)
        self._committed.discard(batch_id)

    def recently_committed(self, message_ids: Sequence[str]) -> set[str]:
        """Those of these events that a batch this worker committed lately held."""
        return {m for m in message_ids if any(m in ids for ids in self._recent)}

    async def matches(self, message_ids: Sequence[str]) -> list[tuple[OpenBatch, set[str]]]:
        """Open batches holding some of these events, with the ones they hold."""
        await self._prune()
        async with self._db.read() as conn:
            batches = await load_batches.open_batches(conn, self._integration_id)
            live = {b.batch_id for b in batches}
            for cached in [b for b in self._ids if b not in live]:
                del self._ids[cached]
            for batch in batches:
                if batch.batch_id not in self._ids:
                    ids = await load_batches.message_ids(conn, self._integration_id, batch.batch_id)
                    self._ids[batch.batch_id] = frozenset(ids)
        if not batches:
            return []
        wanted = set(message_ids)
        found: list[tuple[OpenBatch, set[str]]] = []
        for batch in batches:
            common = wanted & self._ids[batch.batch_id]
            if common:
                found.append((batch, common))
        return found

    def known_committed(self, batch_id: str) -> bool:
        return batch_id in self._committed

    def mark_committed(self, batch_id: str) -> None:
        self._committed.add(batch_id)

    async def _prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        async with self._db.transaction() as conn:
            await load_batches.prune(conn, utcnow() - timedelta(seconds=self._keep_for))
