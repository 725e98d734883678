"""Best-effort dedup by message id for the embedded queue: in memory, per log, for a window of
seconds but at most `capacity` ids (memory stays bounded at any ingest rate); it does not
survive a restart.

Two generations of id hashes per log: ids go into the current one, which becomes the previous
one every half window (or when it holds half the capacity), and the previous one is dropped. An
id is remembered for at least half the window and at most the whole. Sets of hashes rather than
a map of ids to times: a few dozen bytes per id, and the common check (none seen) is two C-level
set operations. Two ids with the same 64-bit hash within a window would be taken for one; at
200,000 ids that is about one chance in 10^9.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventrelay.queue.base import Message


class _Generations:
    __slots__ = ("current", "previous", "started")

    def __init__(self, now: float) -> None:
        self.current: set[int] = set()
        self.previous: set[int] = set()
        self.started = now


class DedupWindow:
    def __init__(self, window: float, capacity: int) -> None:
        self._half = window / 2
        self._half_capacity = max(1, capacity // 2)
        self._logs: dict[str, _Generations] = {}

    def _generations(self, log: str, now: float) -> _Generations | None:
        if self._half <= 0:
            return None
        gens = self._logs.get(log)
        if gens is None:
            gens = self._logs[log] = _Generations(now)
        elif now - gens.started >= self._half or len(gens.current) >= self._half_capacity:
            steps = max(1, int((now - gens.started) // self._half))
            # A generation spans half a window from its scheduled start, so an id is dropped
            # within a whole window of being seen; after two or more idle halves, none is left.
            gens.previous = gens.current if steps == 1 else set()
            gens.current = set()
            gens.started = (
                now
                if len(gens.previous) >= self._half_capacity
                else (gens.started + steps * self._half)
            )
        return gens

    def fresh(self, log: str, messages: Sequence[Message], now: float) -> list[Message]:
        """The messages not seen on this log within the window (and not repeated here)."""
        gens = self._generations(log, now)
        if gens is None:
            return list(messages)
        hashes = [hash(m.id) for m in messages]
        # Fast path (the usual case): no id seen before, none repeated in this batch.
        if (
            gens.current.isdisjoint(hashes)
            and gens.previous.isdisjoint(hashes)
            and len(set(hashes)) == len(hashes)
        ):
            return list(messages)
        fresh: list[Message] = []
        batch: set[int] = set()
        for message, key in zip(messages, hashes, strict=True):
            if key in gens.current or key in gens.previous or key in batch:
                continue
            batch.add(key)
            fresh.append(message)
        return fresh

    def remember(self, log: str, messages: Sequence[Message], now: float) -> None:
        gens = self._generations(log, now)
        if gens is not None:
            gens.current.update(hash(m.id) for m in messages)
