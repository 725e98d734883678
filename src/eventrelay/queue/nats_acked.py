"""What the workers of a deployment acknowledged lately, per JetStream consumer, shared between
worker processes over core NATS.

A nats-server killed without a goodbye loses its consumers' last moments: nats-server (2.9 to
2.14 at least) writes a consumer's state (what it delivered, what was acknowledged) to disk at
most ten times a second (`consumerFileStore.flushLoop`), so on restart a consumer hands out again, as new, the
events it delivered and saw acknowledged in the last ~100 ms: at a few thousand events a second,
whole batches a worker had delivered. Acknowledging them again does not help (the restarted
consumer has not delivered them yet, so it ignores an ack that far ahead). Instead each worker
announces the stream sequences it settled (one small core-NATS message per acknowledged
batch) and every worker process remembers the most recent ones of all workers; a message
handed out again that is among them is acknowledged again and not delivered twice
(`NatsQueue.pull`). A replicated stream (R3) on a cluster does not lose that state on a node
loss; this covers the single server, the default.

Bounded: the last `LIMIT` sequences in all (newest kept), a few MB at most.
"""

from __future__ import annotations

import os
import sys
from array import array
from collections import deque
from collections.abc import Iterable

LIMIT = 200_000
# Announcements start with their sender's id: a process skips its own (it recorded them).
_ORIGIN = 8


class RecentlyAcked:
    def __init__(self, limit: int = LIMIT) -> None:
        self.origin = os.urandom(_ORIGIN)
        self._limit = limit
        self._seqs: dict[str, set[int]] = {}
        self._order: deque[tuple[str, array[int]]] = deque()
        self._size = 0

    def add(self, consumer: str, seqs: array[int]) -> None:
        if not seqs:
            return
        known = self._seqs.setdefault(consumer, set())
        known.update(seqs)
        self._order.append((consumer, seqs))
        self._size += len(seqs)
        while self._size > self._limit and self._order:
            old_consumer, old = self._order.popleft()
            self._size -= len(old)
            remaining = self._seqs.get(old_consumer)
            if remaining is not None:
                remaining.difference_update(old)
                if not remaining:
                    del self._seqs[old_consumer]

    def seen(self, consumer: str, seq: int) -> bool:
        known = self._seqs.get(consumer)
        return known is not None and seq in known

    def pack(self, seqs: Iterable[int]) -> tuple[array[int], bytes]:
        """The sequences as recorded here, and as announced (little-endian u64s after the
        origin)."""
        packed = array("Q", seqs)
        wire = packed
        if sys.byteorder == "big":
            wire = array("Q", packed)
            wire.byteswap()
        return packed, self.origin + wire.tobytes()

    def receive(self, consumer: str, payload: bytes) -> None:
        """Another process's announcement (one of this process's own is ignored)."""
        if len(payload) <= _ORIGIN or payload[:_ORIGIN] == self.origin:
            return
        body = payload[_ORIGIN:]
        if len(body) % 8:
            return  # not ours: a stranger on the subject
        seqs = array("Q")
        seqs.frombytes(body)
        if sys.byteorder == "big":
            seqs.byteswap()
        self.add(consumer, seqs)
