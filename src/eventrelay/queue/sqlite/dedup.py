"""Best-effort dedup by message id for the embedded queue: in memory, per stream, for a window
of seconds but at most `capacity` ids (memory stays bounded at any ingest rate); it does not
survive a restart."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from eventrelay.queue.base import Message


class DedupWindow:
    def __init__(self, window: float, capacity: int) -> None:
        self._window = window
        self._capacity = capacity
        self._seen: dict[str, OrderedDict[str, float]] = {}

    def fresh(self, stream: str, messages: Sequence[Message], now: float) -> list[Message]:
        """The messages not seen on this stream within the window (and not repeated here)."""
        seen = self._seen.get(stream)
        if seen is None:
            if self._window <= 0:
                return list(messages)
            seen = self._seen[stream] = OrderedDict()
        overflow = len(seen) - self._capacity
        while seen:
            key, expires = seen.popitem(last=False)
            if expires > now and overflow <= 0:
                seen[key] = expires
                seen.move_to_end(key, last=False)
                break
            overflow -= 1
        ids = [m.id for m in messages]
        # Fast path (the usual case): no id seen before, none repeated in this batch.
        if not (seen.keys() & ids) and len(set(ids)) == len(ids):
            return list(messages)
        fresh: list[Message] = []
        batch_ids: set[str] = set()
        for message in messages:
            if message.id in seen or message.id in batch_ids:
                continue
            batch_ids.add(message.id)
            fresh.append(message)
        return fresh

    def remember(self, stream: str, messages: Sequence[Message], now: float) -> None:
        seen = self._seen.get(stream)
        if seen is not None:
            seen.update(dict.fromkeys([m.id for m in messages], now + self._window))

    def forget(self, stream: str) -> None:
        self._seen.pop(stream, None)
