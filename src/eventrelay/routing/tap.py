"""The live view of a source's events (`eventrelay tail`, the console's debugger): each accepted
event with the routing decision per integration (queued, or filtered and why) and, as workers
settle it, its delivery outcome per integration (delivered, retried, discarded, filtered,
expired; `delivery/live_outcomes.py`).

Cost on the ingest path: with nobody listening, one set lookup per request (`source.id in
tap.watched`); with a listener, a token-bucket check (at most `RATE` events a second per source
and process are shown, the rest are counted as skipped: a sample, never a backlog) and one
append to a bounded deque. A background task does the rest: it replays routing per event with
the very `route` ingest used and the source entry of that request, and serialises each entry
once for every listener.

Listeners in other processes are found through leases announced over a fan-out (`bus/live.py`:
NATS core subjects in scale-out, Unix sockets between the processes of one data directory):
every process knows which sources someone listens to anywhere, and sends their entries to the
listener's process. A lease lasts `LEASE_SECONDS` and is renewed every `RENEW_SECONDS`; a
process that starts asks for the current leases at once, and a listener that vanished without a
word expires within seconds. Without a fan-out, everything stays in the process.

Workers (in any process: every process that delivers has a tap too) offer outcomes the same
way: one set lookup per settled batch when nobody listens; with a listener, a token bucket
(`OUTCOME_RATE` outcomes a second per source and process, the rest counted as skipped) and a
bounded deque; the background task serialises them, one entry per batch.

A listener gets entries through a bounded buffer: when a client reads slower than events come,
entries are skipped (and counted) rather than queued without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from eventrelay.bus.live import Fanout
from eventrelay.queue.base import Message
from eventrelay.routing.directory import SourceEntry
from eventrelay.routing.router import Routed, route
from eventrelay.rules import ORG_RULE
from eventrelay.tasks import stop_task

log = logging.getLogger("eventrelay.live")

RATE = 100.0  # events explained per second per source and process (a person reads far fewer)
BURST = 200.0
OUTCOME_RATE = 500.0  # outcomes a second per source and process (an event has one per integration)
OUTCOME_BURST = 1_000.0
MAX_PENDING = 256  # requests waiting to be explained; beyond, they are skipped
LISTENER_BUFFER = 1_000  # entries a listener may have unread
LEASE_SECONDS = 15.0
RENEW_SECONDS = 5.0

Accepted = Sequence[Message]  # the accepted events, as stored
Outcomes = list[dict[str, Any]]  # settled outcomes of one batch (delivery/live_outcomes.py)


class Listener:
    """One client following one source: entries (JSON bytes) and a count of what it missed."""

    def __init__(self, source_id: str) -> None:
        self.id = uuid.uuid4().hex
        self.source_id = source_id
        self.skipped = 0
        self.skipped_outcomes = 0
        self._entries: asyncio.Queue[bytes] = asyncio.Queue(LISTENER_BUFFER)

    def put(self, entry: bytes) -> None:
        try:
            self._entries.put_nowait(entry)
        except asyncio.QueueFull:
            if entry.startswith(b'{"outcomes":'):
                self.skipped_outcomes += 1  # an entry holds a batch: a lower bound
            else:
                self.skipped += 1

    async def next(self, timeout: float) -> bytes | None:
        """The next entry, or None after `timeout` seconds without one."""
        try:
            return await asyncio.wait_for(self._entries.get(), timeout)
        except TimeoutError:
            return None

    def take_skipped(self) -> int:
        count, self.skipped = self.skipped, 0
        return count

    def take_skipped_outcomes(self) -> int:
        count, self.skipped_outcomes = self.skipped_outcomes, 0
        return count


def explain(
    source: SourceEntry, event: dict[str, Any], raw: bytes, dropped: bool = False
) -> dict[str, Any]:
    """One entry: the event as accepted and, per integration of the source, the decision.
    `dropped`: an organisation rule dropped it at ingest (filtered for every integration)."""
    if dropped:
        routed = Routed()
        reasons = {target.integration_id: ORG_RULE for target in source.routes}
    else:
        routed = route(source, [(event, raw)])
        reasons = {integration: reason for integration, reason in routed.filtered}
    decisions = []
    for target in source.routes:
        decision: dict[str, Any] = {"integration_id": target.integration_id, "type": target.type}
        if target.integration_id in routed.batches:
            decision["decision"] = "queued"
        else:
            decision["decision"] = "filtered"
            decision["reason"] = reasons.get(target.integration_id, "unknown")
        decisions.append(decision)
    return {
        "source_id": source.id,
        "message_id": event.get("messageId"),
        "type": event.get("type"),
        "received_at": event.get("receivedAt"),
        "event": event,
        "routing": decisions,
    }


class Tap:
    def __init__(self, fanout: Fanout | None = None) -> None:
        # Read by ingest on every request: the sources someone listens to, here or elsewhere.
        self.watched: frozenset[str] = frozenset()
        self.stopping = False  # the process is shutting down: streams end
        self._fanout = fanout
        self._listeners: dict[str, set[Listener]] = {}
        self._leases: dict[str, dict[str, float]] = {}  # remote: source -> listener -> expiry
        # (source entry, accepted events, events organisation rules dropped)
        self._pending: deque[tuple[SourceEntry, Accepted, Accepted]] = deque()
        self._skipped: Counter[str] = Counter()
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, at)
        self._outcomes: deque[tuple[str, Outcomes]] = deque()
        self._skipped_outcomes: Counter[str] = Counter()
        self._outcome_buckets: dict[str, tuple[float, float]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._renewing: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._fanout is not None:
            try:
                await self._fanout.start(self._on_watch, self._on_events)
            except Exception as exc:  # the live view is a debugging aid: never block a start
                log.warning(
                    "live view: fan-out unavailable, this process shows only its own events",
                    extra={"error_type": type(exc).__name__},
                )
                self._fanout = None
            else:
                # Listeners elsewhere re-announce at once: a process that starts late learns
                # of them now rather than at their next renewal.
                with contextlib.suppress(Exception):
                    await self._fanout.announce(b'{"q":1}')
        self._tasks = [
            asyncio.create_task(self._explain_loop(), name="live-explain"),
            asyncio.create_task(self._lease_loop(), name="live-leases"),
        ]

    def stop_listeners(self) -> None:
        """Shutdown begins: end every stream (within a second) so it does not hold the
        server's graceful shutdown."""
        self.stopping = True

    async def close(self) -> None:
        self.stopping = True
        for task in [*self._tasks, *self._renewing]:
            await stop_task(task)
        self._tasks = []
        if self._fanout is not None:
            await self._fanout.close()

    # --- ingest side (hot path) ------------------------------------------------------------

    def offer(self, source: SourceEntry, accepted: Accepted, dropped: Accepted = ()) -> None:
        """Called by ingest, after the events are durable, only for watched sources; `dropped`
        are the events organisation rules dropped (shown as filtered: org_rule)."""
        wanted = len(accepted) + len(dropped)
        allowed = (
            _allowance(self._buckets, source.id, wanted, RATE, BURST)
            if len(self._pending) < MAX_PENDING
            else 0
        )
        if allowed < wanted:
            self._skipped[source.id] += wanted - allowed
        if allowed:
            if allowed < wanted:
                accepted, dropped = accepted[:allowed], dropped[: max(0, allowed - len(accepted))]
            self._pending.append((source, accepted, dropped))
            self._wake.set()

    # --- delivery side (a worker settled a batch) ------------------------------------------

    def offer_outcomes(
        self, source_id: str, count: int, outcomes: Iterable[dict[str, Any]]
    ) -> None:
        """Called by a worker after settling a batch, only for watched sources: `count`
        outcomes, built lazily so that those sampled out cost nothing."""
        allowed = (
            _allowance(self._outcome_buckets, source_id, count, OUTCOME_RATE, OUTCOME_BURST)
            if len(self._outcomes) < MAX_PENDING
            else 0
        )
        if allowed < count:
            self._skipped_outcomes[source_id] += count - allowed
        if allowed:
            self._outcomes.append((source_id, list(itertools.islice(outcomes, allowed))))
            self._wake.set()

    # --- listeners -------------------------------------------------------------------------

    async def listen(self, source_id: str) -> Listener:
        listener = Listener(source_id)
        first = source_id not in self._listeners
        self._listeners.setdefault(source_id, set()).add(listener)
        self._recompute()
        if self._fanout is not None:
            with contextlib.suppress(Exception):  # local events still flow
                if first:
                    await self._fanout.listen(source_id)
                await self._announce(listener, LEASE_SECONDS)
        return listener

    async def unlisten(self, listener: Listener) -> None:
        listeners = self._listeners.get(listener.source_id)
        if listeners is None or listener not in listeners:
            return
        listeners.discard(listener)
        if not listeners:
            del self._listeners[listener.source_id]
        self._recompute()
        if self._fanout is not None:
            with contextlib.suppress(Exception):
                await self._announce(listener, 0)
                if listener.source_id not in self._listeners:
                    await self._fanout.unlisten(listener.source_id)

    async def _announce(self, listener: Listener, ttl: float) -> None:
        assert self._fanout is not None
        payload = orjson.dumps({"s": listener.source_id, "l": listener.id, "ttl": ttl})
        await self._fanout.announce(payload)

    def _recompute(self) -> None:
        now = time.monotonic()
        remote = {
            source
            for source, leases in self._leases.items()
            if any(expiry > now for expiry in leases.values())
        }
        self.watched = frozenset(self._listeners) | frozenset(remote)

    # --- fan-out callbacks -----------------------------------------------------------------

    def _on_watch(self, payload: bytes) -> None:
        try:
            data = orjson.loads(payload)
            if isinstance(data, dict) and data.get("q"):
                self._renew_soon()
                return
            source, listener, ttl = str(data["s"]), str(data["l"]), float(data["ttl"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return  # not one of ours
        leases = self._leases.setdefault(source, {})
        if ttl > 0:
            leases[listener] = time.monotonic() + ttl
        else:
            leases.pop(listener, None)
            if not leases:
                del self._leases[source]
        self._recompute()

    def _on_events(self, source_id: str, payload: bytes) -> None:
        listeners = self._listeners.get(source_id, ())
        if payload.startswith(b'{"skipped_outcomes":'):
            try:
                count = int(orjson.loads(payload)["skipped_outcomes"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return
            for listener in listeners:
                listener.skipped_outcomes += count
            return
        if payload.startswith(b'{"skipped":'):
            try:
                count = int(orjson.loads(payload)["skipped"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return
            for listener in listeners:
                listener.skipped += count
            return
        for listener in listeners:
            listener.put(payload)

    def _renew_soon(self) -> None:
        if not self._listeners or self._fanout is None:
            return
        task = asyncio.create_task(self._renew(), name="live-renew")
        self._renewing.add(task)
        task.add_done_callback(self._renewing.discard)

    async def _renew(self) -> None:
        for listeners in list(self._listeners.values()):
            for listener in list(listeners):
                with contextlib.suppress(Exception):
                    await self._announce(listener, LEASE_SECONDS)

    # --- background ------------------------------------------------------------------------

    async def _explain_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outcomes:
                source_id, outcomes = self._outcomes.popleft()
                entry = orjson.dumps({"outcomes": outcomes, "source_id": source_id})
                await self._deliver(source_id, entry)
            while self._pending:
                source, accepted, dropped = self._pending.popleft()
                shown = [(m, False) for m in accepted] + [(m, True) for m in dropped]
                for message, was_dropped in shown:
                    try:
                        raw = message.data
                        entry = orjson.dumps(explain(source, orjson.loads(raw), raw, was_dropped))
                    except Exception as exc:  # never let one odd event stop the view
                        log.warning(
                            "live view: entry failed", extra={"error_type": type(exc).__name__}
                        )
                        continue
                    await self._deliver(source.id, entry)
                await asyncio.sleep(0)  # let requests in between

    async def _deliver(self, source_id: str, entry: bytes) -> None:
        for listener in self._listeners.get(source_id, ()):
            listener.put(entry)
        if self._fanout is not None and source_id in self._leases:
            try:
                await self._fanout.publish(source_id, entry)
            except Exception as exc:
                log.warning("live view: publish failed", extra={"error_type": type(exc).__name__})

    async def _deliver_skipped(self, source_id: str, count: int, outcomes: bool = False) -> None:
        for listener in self._listeners.get(source_id, ()):
            if outcomes:
                listener.skipped_outcomes += count
            else:
                listener.skipped += count
        if self._fanout is not None and source_id in self._leases:
            notice = {"skipped_outcomes" if outcomes else "skipped": count}
            with contextlib.suppress(Exception):
                await self._fanout.publish(source_id, orjson.dumps(notice))

    async def _lease_loop(self) -> None:
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            skipped, self._skipped = self._skipped, Counter()
            for source_id, count in skipped.items():
                await self._deliver_skipped(source_id, count)
            skipped, self._skipped_outcomes = self._skipped_outcomes, Counter()
            for source_id, count in skipped.items():
                await self._deliver_skipped(source_id, count, outcomes=True)
            now = time.monotonic()
            for source, leases in list(self._leases.items()):
                for listener_id, expiry in list(leases.items()):
                    if expiry <= now:
                        del leases[listener_id]
                if not leases:
                    del self._leases[source]
            self._recompute()
            if self._fanout is not None and now - renewed >= RENEW_SECONDS:
                renewed = now
                await self._renew()


def _allowance(
    buckets: dict[str, tuple[float, float]], key: str, wanted: int, rate: float, burst: float
) -> int:
    """Token bucket per source: how many of `wanted` entries may be shown now."""
    now = time.monotonic()
    tokens, at = buckets.get(key, (burst, now))
    tokens = min(burst, tokens + (now - at) * rate)
    allowed = min(wanted, int(tokens))
    buckets[key] = (tokens - allowed, now)
    return allowed
