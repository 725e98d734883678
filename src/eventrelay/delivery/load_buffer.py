"""Buffers of file-loading integrations: the flush policy, and one memory budget per process.

An integration's buffer flushes at `batch_size` events, `batch_max_bytes` bytes or
`batch_interval_ms` after its first event. Every buffered or loading event is held by this
process (its queue lease renewed), so a process with many integrations could hold
integrations x 64 MB; the shared budget caps the sum: when it is spent, buffers flush early
(smaller loads, bounded memory) and no worker pulls more until loads release their bytes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from eventrelay.queue.base import Delivery


class BufferBudget:
    """Bytes of event data held by the file-loading workers of one process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        self.used += size

    def give(self, size: int) -> None:
        self.used = max(0, self.used - size)

    @property
    def spent(self) -> bool:
        return self.used >= self.limit


@dataclass(slots=True)
class Policy:
    max_events: int
    max_bytes: int
    interval: float  # seconds since the first buffered event


@dataclass(slots=True)
class Buffer:
    policy: Policy
    budget: BufferBudget
    deliveries: list[Delivery] = field(default_factory=list)
    size: int = 0
    first_at: float | None = None  # monotonic

    def add(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        if self.first_at is None:
            self.first_at = time.monotonic()
        added = sum(len(d.data) for d in deliveries)
        self.deliveries.extend(deliveries)
        self.size += added
        self.budget.take(added)

    def due(self) -> bool:
        if not self.deliveries:
            return False
        return (
            len(self.deliveries) >= self.policy.max_events
            or self.size >= self.policy.max_bytes
            or self.budget.spent
            or self.wait() <= 0
        )

    def wait(self) -> float:
        """Seconds until the interval flush (the pull timeout while the buffer fills)."""
        if self.first_at is None:
            return self.policy.interval
        return self.first_at + self.policy.interval - time.monotonic()

    def room(self) -> int:
        return max(0, self.policy.max_events - len(self.deliveries))

    def take(self) -> tuple[list[Delivery], int]:
        """Empty the buffer: its events and their bytes (still counted in the budget until the
        load that takes them gives them back)."""
        taken, size = self.deliveries, self.size
        self.deliveries, self.size, self.first_at = [], 0, None
        return taken, size
