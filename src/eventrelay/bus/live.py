"""How the live event view (`routing/tap.py`) reaches other processes: a fan-out carries
listeners' leases to every API and worker process and sources' entries to the listeners' processes.

Two implementations: NATS core subjects between the API processes of the scale-out shape
(`live_nats.py`), Unix stream sockets between the processes sharing one data directory
(`live_local.py`, `serve --processes N`).

Why NATS core rather than PostgreSQL NOTIFY in scale-out: an event may be 32 KB and a NOTIFY
payload stops at 8,000 bytes; NOTIFY traffic goes through the database's commit path, which the
control plane needs for itself; NATS is already part of the scale-out shape, sends a subject's
messages only to the processes subscribed to it, and drops (rather than stores) what nobody
listens to.

Subjects, next to (never under) the delivery stream's `<prefix>.>`, so JetStream stores none:

    <prefix>-live.watch           a listener's lease, to every API process:
                                  {"s": source id, "l": listener id, "ttl": seconds; 0 = gone},
                                  or {"q": 1} from a process that starts: "re-announce"
    <prefix>-live.events.<source> the source's explained events, its events' delivery outcomes
                                  (from worker processes) and skip notices, subscribed only by
                                  processes that have a listener for that source

The connection uses `no_echo`: a process never receives what it published itself (it hands its
own listeners their events directly).

Sources: NOTIFY payload limit (8,000 bytes by default):
https://www.postgresql.org/docs/current/sql-notify.html; NATS core publish-subscribe and
`max_payload` (1 MB by default): https://docs.nats.io/nats-concepts/core-nats/pubsub; no echo:
https://docs.nats.io/using-nats/developer/connecting/noecho
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

OnWatch = Callable[[bytes], None]  # a lease (or a request for leases) from another process
OnEvents = Callable[[str, bytes], None]  # (source id, entry or skip notice) from another process


class Fanout(Protocol):
    @property
    def connected(self) -> bool: ...

    async def start(self, on_watch: OnWatch, on_events: OnEvents) -> None: ...

    async def close(self) -> None: ...

    async def announce(self, payload: bytes) -> None:
        """To every other process."""
        ...

    async def publish(self, source_id: str, payload: bytes) -> None:
        """To the processes listening to `source_id`."""
        ...

    async def listen(self, source_id: str) -> None: ...

    async def unlisten(self, source_id: str) -> None: ...
