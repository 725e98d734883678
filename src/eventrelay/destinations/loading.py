"""The contract of file-loading destinations (object stores and warehouses), next to the HTTP
contract of `base.py`.

These destinations do not send one request per batch: events are buffered (flush policy:
`batch_size` events, `batch_interval_ms` since the first buffered event, `batch_max_bytes`),
written into staged rows or objects by a pure writer (`FileDestination.write`, this package),
and loaded by a loader in `eventrelay.loaders` that does the I/O (upload, COPY, load job,
MERGE). The delivery layer (`delivery/loading.py`) acknowledges an event to the queue only after
the load containing it has committed.

A batch is named by its content (`batch_id`): retrying the same events reuses the same object
key, staged file name or load job id, so a retried load is idempotent. Crash recovery (events
redelivered in another grouping) goes through the load journal, see `delivery/load_journal.py`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from eventrelay.destinations.base import (
    BuildContext,
    BuildResult,
    Destination,
    EventRecord,
    VendorSettings,
)
from eventrelay.destinations.tables import TableRows

MIB = 1024 * 1024
# Upper bounds keep a full buffer plus one batch in flight within JetStream's max_ack_pending
# (50,000 per consumer, queue/nats.py) and a worker's memory budget.
MAX_BATCH_EVENTS = 20_000
MAX_BATCH_BYTES = 256 * MIB


class LoadingSettings(VendorSettings):
    """The flush policy every file-loading type shares (the webhook's field names)."""

    batch_size: Annotated[
        int,
        Field(ge=1, le=MAX_BATCH_EVENTS, description="Flush when this many events are buffered."),
    ] = 10_000
    batch_interval_ms: Annotated[
        int,
        Field(
            ge=100,
            le=900_000,
            description="Flush this long after the first buffered event, however few there are.",
        ),
    ] = 60_000
    batch_max_bytes: Annotated[
        int,
        Field(
            ge=64 * 1024,
            le=MAX_BATCH_BYTES,
            description="Flush when the buffered events reach this many bytes (JSON).",
        ),
    ] = 64 * MIB


class WarehouseSettings(LoadingSettings):
    """What every warehouse type adds: dedup mode and window, table layout."""

    load_mode: Annotated[
        Literal["dedup", "append"],
        Field(
            description="dedup: a message_id already loaded within dedup_window_hours is replaced"
            " (staging table, then delete+insert/MERGE); append: plain inserts, cheaper, and a"
            " client's resent event may appear twice."
        ),
    ] = "dedup"
    dedup_window_hours: Annotated[
        int,
        Field(ge=1, le=24 * 400, description="How far back (by received_at) dedup looks."),
    ] = 720
    layout: Annotated[
        Literal["single", "segment"],
        Field(
            description="single: one table with core columns and JSON properties/traits/context;"
            " segment: Segment's warehouse schema (tracks, identifies, users, pages, screens,"
            " groups, aliases, one table per track event, properties flattened to columns)."
        ),
    ] = "single"


def batch_id(message_ids: Sequence[str]) -> str:
    """The name of a batch, from its content: the same events in the same order give the same
    name (object key, staged file name, load job id), so a retried load overwrites or is
    skipped instead of duplicating. 26 base32 characters (130 bits of SHA-256)."""
    digest = hashlib.sha256("\n".join(message_ids).encode()).digest()
    return base64.b32encode(digest).decode()[:26].lower()


@dataclass(slots=True)
class StagedObject:
    """One object to store as it is (object stores)."""

    key: str
    body: bytes  # the encoded payload (e.g. gzip NDJSON)
    content_type: str
    content_encoding: str | None = None


@dataclass(slots=True)
class WriteContext:
    now: datetime
    source_id: str
    integration_id: str


@dataclass(slots=True)
class Written:
    """What `write` made of a batch. `events` are the indices it holds, in order (the batch's
    message ids, and so its id, come from them); `skipped` the events it leaves out, with why."""

    id: str
    message_ids: list[str]
    events: list[int]
    objects: list[StagedObject] = field(default_factory=list)
    tables: list[TableRows] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    # Events of this batch whose message_id an earlier event of the same batch carries: they are
    # delivered by that event (acknowledged with it), never loaded twice.
    duplicates: list[int] = field(default_factory=list)


class FileDestination(Destination):
    """Base of the file-loading types. `write` is pure and deterministic for a frozen clock;
    the loader for the type is found by `eventrelay.loaders.loader_for`."""

    delivers = True
    loads_files: ClassVar[bool] = True
    max_batch = MAX_BATCH_EVENTS
    max_batch_bytes = MAX_BATCH_BYTES
    # The pip extra holding the client libraries (`pip install 'eventrelay[<extra>]'`) and the
    # modules it provides, checked when an integration is created.
    extra: ClassVar[str]
    extra_modules: ClassVar[tuple[str, ...]] = ()

    def batch_size(self, settings: VendorSettings) -> int:
        assert isinstance(settings, LoadingSettings)
        return settings.batch_size

    def batch_wait_seconds(self, settings: VendorSettings) -> float:
        assert isinstance(settings, LoadingSettings)
        return settings.batch_interval_ms / 1000

    def batch_bytes(self, settings: VendorSettings) -> int:
        assert isinstance(settings, LoadingSettings)
        return settings.batch_max_bytes

    def write(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: WriteContext
    ) -> Written:
        raise NotImplementedError

    def build(
        self, events: Sequence[EventRecord], settings: VendorSettings, ctx: BuildContext
    ) -> BuildResult:
        raise TypeError(f"{self.type} loads files: use write() and its loader, not build()")


def unique_events(events: Sequence[EventRecord]) -> tuple[list[int], list[int]]:
    """(first occurrence of each message_id, later repeats) by index: a batch loads each
    message_id once."""
    seen: set[str] = set()
    first: list[int] = []
    repeats: list[int] = []
    for index, record in enumerate(events):
        if record.message_id in seen:
            repeats.append(index)
        else:
            seen.add(record.message_id)
            first.append(index)
    return first, repeats
