"""The delivery queue contract, shaped after what a replicated stream engine offers (NATS
JetStream): accepted events are appended once to a *log* (one per source), however many
integrations read them; each integration reads its source's log as a *stream* with its own
position, leases and retries (a JetStream durable consumer): pull in batches, ack, retry after a
delay (negative ack), terminate, purge, and redelivery of anything not settled after a crash.

A pulled batch is leased to its puller for `lease_seconds` (JetStream's ack wait): renewed by
`extend`, given back at once by `release` (a cancelled batch), and handed out again when the
lease runs out (its holder hung or lost it). Nothing pulled can be stranded.

Every backend passes the same contract test-suite (tests/queue/test_contract.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple, Protocol


class Message(NamedTuple):
    id: str  # dedup id: the event's messageId
    data: bytes  # the normalised event, JSON


class Delivery(Protocol):
    """One message handed to a consumer; settle it with ack, retry or terminate."""

    @property
    def message_id(self) -> str: ...

    @property
    def data(self) -> bytes: ...

    @property
    def published_at(self) -> float:
        """Epoch seconds of the first publish (for expiry and latency metrics)."""
        ...

    @property
    def attempts(self) -> int:
        """How many times this message has been handed out, this time included (1 = first)."""
        ...


class Queue(Protocol):
    # How long a pulled message stays reserved for its puller before the queue hands it to
    # another one, unless `extend` renews it.
    lease_seconds: float | None

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def subscribe(self, stream: str, log: str, since: float | None = None) -> None:
        """Make `stream` a reader of `log`, starting with what was published at or after
        `since` (epoch seconds; None: everything the log still holds). A stream that reads
        already keeps its position. Call before pulling, in every process that pulls."""
        ...

    async def publish(
        self, log: str, messages: Sequence[Message], skip: Collection[str] = ()
    ) -> None:
        """Append messages to a log once, for every stream reading it; durable when this
        returns. Streams named in `skip` are never handed these (an integration paused when
        they were accepted). A message id seen on the same log within the dedup window is
        stored once."""
        ...

    async def pull(
        self, stream: str, max_messages: int, timeout: float, fill: float = 0.0
    ) -> list[Delivery]:
        """Wait up to `timeout` for a first message, then up to `fill` more seconds for the batch
        to reach `max_messages`. Returns [] on timeout."""
        ...

    async def ack(self, stream: str, deliveries: Sequence[Delivery]) -> None: ...

    async def extend(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        """Still working on these (a slow vendor): renew their reservation."""
        ...

    async def release(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        """Give back the unsettled ones at once, to be handed out again (a cancelled batch);
        the next hand-out counts as another attempt. Already settled ones are left alone."""
        ...

    async def retry(self, stream: str, deliveries: Sequence[Delivery], delay: float) -> None:
        """Hand the messages out again after `delay` seconds (attempts keep counting)."""
        ...

    async def terminate(self, stream: str, deliveries: Sequence[Delivery]) -> None:
        """Never deliver these again (discarded or expired)."""
        ...

    async def purge(self, stream: str) -> None:
        """Stop reading for a stream and drop what it had not settled (its integration was
        deleted); the other streams of its log are not affected."""
        ...

    async def depth(self, stream: str) -> int:
        """Messages stored for a stream (in flight included)."""
        ...

    async def depths(self) -> dict[str, int]:
        """Messages stored per stream, for every stream that has any."""
        ...

    async def expire(self, max_age: float) -> dict[str, int]:
        """Drop messages older than `max_age` seconds that no live lease holds (including
        those of batches whose lease ran out); counts per stream."""
        ...
